"""Cluster mode: state shared by several outguard instances (see caps.py for Redis)."""
