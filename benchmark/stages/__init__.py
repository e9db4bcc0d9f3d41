"""One module per DVC stage: load validated settings, call the library, write outputs atomically."""
