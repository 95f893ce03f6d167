//! QuiverDB storage: bytes made durable. Knows nothing about vectors.
