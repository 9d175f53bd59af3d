"""The webhook role: admission reviews answered on kopf's server, one path: decode, route, admit, respond."""
