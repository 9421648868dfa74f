"""The memory service: request and response models (:mod:`memp.server.schemas`), the
transport-independent service (:mod:`memp.server.service`), and its two transports, the
HTTP API (:mod:`memp.server.http`) and the MCP server (:mod:`memp.server.mcp`)."""
