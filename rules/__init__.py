"""Pure screening decisions: numbers, rules, snapshots. No I/O."""
