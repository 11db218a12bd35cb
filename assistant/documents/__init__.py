"""Question answering over the user's own documents: readers -> passages -> index (Qdrant + BM25) -> answer."""
