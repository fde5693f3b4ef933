"""Watch rules: the operator's own conditions for a viewer to get a stream."""
