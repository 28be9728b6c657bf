"""Chain events -> database: the reorg-safe, resumable indexer and the projections it keeps."""
