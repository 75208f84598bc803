"""Model converters: build the .tflite files shipped in models/ (needs torch, litert-torch, ai-edge-quantizer)."""
