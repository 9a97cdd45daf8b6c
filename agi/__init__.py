"""FastAGI server and AMI outcome listener."""
