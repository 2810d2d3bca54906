"""Offline test bed: tiny VLMs built from configs, synthetic grounded images, and a scriptable
OpenAI-compatible server on loopback (``openai_server``) standing in for judge and model
servers in tests and ``bench/``."""
