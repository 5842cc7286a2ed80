"""File formats shared with TensorFlow: protobuf's wire encoding, masked CRC-32C, the
sorted string table of a checkpoint's ``.index`` file and the tensor bundle (TensorFlow's
V2 checkpoint) built on it. Nothing here knows about graphs or devices: a bundle maps
names to NumPy arrays."""
