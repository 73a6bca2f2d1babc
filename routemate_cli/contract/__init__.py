"""The published contract: the merged public OpenAPI document and the AsyncAPI document of the events."""
