"""The gateway's own endpoints: the CLI API, the page, the OpenAPI document."""
