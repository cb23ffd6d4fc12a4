"""PocketWorld fine-tuning: LoRA on zoo models, ingest of user gameplay, and the hub/registry."""
