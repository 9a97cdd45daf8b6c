"""ARI Stasis application (aiohttp REST + events WebSocket)."""
