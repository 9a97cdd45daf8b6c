"""outguard: outbound call screening for Asterisk."""
