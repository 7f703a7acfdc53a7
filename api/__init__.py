"""FastAPI application: one router per audience (gateway, app, trading), auth and settings."""
