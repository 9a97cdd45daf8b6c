"""Test and benchmark helpers: SIPp runners for the sandbox PBX."""
