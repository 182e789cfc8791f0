"""Getting tasks in: where each split comes from, the readers of official formats, the Hub, and the canonical schema."""
