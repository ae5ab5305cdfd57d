"""Inference: the engine interface and its value objects (`params`), the openvino-genai engine, the
mock, the loader that builds one in the background, and the pieces they use (calls per mode, style
transfer, step previews, device choice)."""
