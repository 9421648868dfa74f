"""The memory service: HTTP API (:mod:`memp.server.http`) and MCP server (:mod:`memp.server.mcp`)."""
