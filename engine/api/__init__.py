"""HTTP: FastAPI routers, one per domain noun, and the dashboard."""
