//! [`ImageEmbedder`]: image embeddings from EfficientNet-Lite0 (ImageNet-trained), run on the CPU.
//!
//! The network is MobileNet-style: a 3×3 stride-2 stem, 16 inverted-residual blocks (1×1 expansion, k×k depthwise,
//! 1×1 projection, ReLU6 after the first two, a skip when the shape is kept) and a 1×1 head to 1,280 channels. The
//! embedding is the head's output averaged over the image (the input of the classifier), L2-normalised. Batch norm
//! is folded into each convolution at load. Padding is TensorFlow's "same" (for a stride of 2 the extra row and
//! column go after the image), as the weights were trained with it.
//!
//! Feature maps are pixel-major: the 1×1 convolutions, and the stem through its patches, are matrix products
//! (candle's GEMM); the depthwise convolutions are loops along contiguous channels. A batch runs its images in
//! parallel on the rayon pool.
//!
//! Inputs are encoded images (JPEG, PNG, WebP, GIF, BMP), decoded with the `image` crate under size limits, then
//! prepared as at evaluation: the centre square of `crop_fraction` of the shorter side, resized (bicubic) to
//! `image_size`², scaled as `(pixel − mean) / std`.

use std::path::{Path, PathBuf};

use candle_core::{Device, Tensor};
use rayon::prelude::*;
use serde::Deserialize;

use crate::error::{EmbedError, Result};
use crate::{EmbedOptions, Embedder, Modality};

pub use crate::locate::EFFICIENTNET_LITE;

/// The largest width or height of an image that is decoded.
pub const MAX_IMAGE_SIDE: u32 = 16_384;

/// The most memory one image may take while decoded.
pub const MAX_IMAGE_BYTES: u64 = 256 << 20;

/// An image model's `config.json` (written by `scripts/convert_efficientnet.py`).
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct ImageConfig {
    /// `efficientnet_lite`.
    pub model_type: String,
    /// `lite0`.
    pub variant: String,
    /// The side of the square the network reads.
    pub image_size: u32,
    /// The centre crop's side, as a fraction of the image's shorter side.
    pub crop_fraction: f32,
    /// Per channel (R, G, B), subtracted from 0..=255 pixel values.
    pub mean: [f32; 3],
    /// Per channel, divides after the mean is taken off.
    pub std: [f32; 3],
    /// Batch norm's epsilon.
    pub batch_norm_eps: f32,
    /// The embedding's length (the head's channels).
    pub hidden_size: usize,
    /// Where the weights came from (informational).
    #[serde(default)]
    pub source: Option<String>,
}

impl ImageConfig {
    /// Reads `dir/config.json`.
    pub fn load(dir: &Path) -> Result<Self> {
        let path = dir.join("config.json");
        let text = std::fs::read_to_string(&path).map_err(|source| EmbedError::Io { path: path.clone(), source })?;
        let config: ImageConfig = serde_json::from_str(&text)
            .map_err(|e| EmbedError::BadConfig { path: path.clone(), message: e.to_string() })?;
        let bad = |message: String| EmbedError::BadConfig { path: path.clone(), message };
        if config.model_type != EFFICIENTNET_LITE {
            return Err(EmbedError::UnsupportedModel { path, model_type: config.model_type });
        }
        if config.variant != "lite0" {
            return Err(EmbedError::UnsupportedSetting { path, field: "variant", value: config.variant });
        }
        if !(32..=1024).contains(&config.image_size) {
            return Err(bad(format!("image_size = {}: expected 32..=1024", config.image_size)));
        }
        if !(config.crop_fraction > 0.0 && config.crop_fraction <= 1.0) {
            return Err(bad(format!("crop_fraction = {}: expected a number in (0, 1]", config.crop_fraction)));
        }
        if config.std.iter().any(|s| !(s.is_finite() && *s > 0.0)) || config.mean.iter().any(|m| !m.is_finite()) {
            return Err(bad("mean and std must be finite, std above 0".to_string()));
        }
        if !(config.batch_norm_eps.is_finite() && config.batch_norm_eps > 0.0) {
            return Err(bad(format!("batch_norm_eps = {}: expected a positive number", config.batch_norm_eps)));
        }
        Ok(config)
    }
}

/// A convolution with its batch norm folded in: `out = W · patch + bias`, then ReLU6 when `relu6`.
#[derive(Debug)]
struct Conv {
    /// `out × (in · k · k)` (dense) or `out × k · k` (depthwise), row-major.
    weight: Vec<f32>,
    /// Dense convolutions: the weights transposed to `(in · k · k) × out`, the right-hand side of the product.
    matrix: Option<Tensor>,
    bias: Vec<f32>,
    out_channels: usize,
    in_channels: usize,
    kernel: usize,
    stride: usize,
    relu6: bool,
}

/// One inverted-residual block.
#[derive(Debug)]
struct Block {
    expand: Option<Conv>,
    depthwise: Conv,
    project: Conv,
    skip: bool,
}

/// Feature maps of one image, pixel-major: `height × width × channels` (a pixel's channels side by side, so the
/// depthwise loops and the element-wise steps run along contiguous channels, and a 1×1 convolution is one product
/// `(pixels × in) · (in × out)`).
#[derive(Debug, Clone)]
struct Maps {
    channels: usize,
    height: usize,
    width: usize,
    data: Vec<f32>,
}

/// EfficientNet-Lite0's stages: (blocks, depthwise kernel, first block's stride, expansion, output channels).
const LITE0_STAGES: [(usize, usize, usize, usize, usize); 7] = [
    (1, 3, 1, 1, 16),
    (2, 3, 2, 6, 24),
    (2, 5, 2, 6, 40),
    (3, 3, 2, 6, 80),
    (3, 5, 1, 6, 112),
    (4, 5, 2, 6, 192),
    (1, 3, 1, 6, 320),
];

/// The network.
#[derive(Debug)]
struct EfficientNetLite {
    stem: Conv,
    blocks: Vec<Block>,
    head: Conv,
}

/// The tensors of `model.safetensors` by name.
struct Weights {
    path: PathBuf,
    tensors: std::collections::HashMap<String, Tensor>,
    eps: f32,
}

impl Weights {
    fn err(&self, message: String) -> EmbedError {
        EmbedError::Weights { path: self.path.clone(), message }
    }

    fn get(&self, name: &str, shape: &[usize]) -> Result<Vec<f32>> {
        let t = self.tensors.get(name).ok_or_else(|| self.err(format!("no tensor {name}")))?;
        if t.dims() != shape {
            return Err(self.err(format!("{name} has shape {:?}, expected {shape:?}", t.dims())));
        }
        t.flatten_all()
            .and_then(|t| t.to_dtype(candle_core::DType::F32))
            .and_then(|t| t.to_vec1::<f32>())
            .map_err(|e| self.err(format!("{name}: {e}")))
    }

    /// The convolution `prefix` followed by batch norm `bn`, folded: W'ᵢ = Wᵢ · γᵢ/√(σ²ᵢ+ε), b'ᵢ = βᵢ − μᵢ · γᵢ/√(σ²ᵢ+ε).
    #[allow(clippy::too_many_arguments)]
    fn conv(
        &self,
        conv: &str,
        bn: &str,
        out_channels: usize,
        in_channels: usize,
        kernel: usize,
        stride: usize,
        depthwise: bool,
        relu6: bool,
    ) -> Result<Conv> {
        let per_out = if depthwise { 1 } else { in_channels };
        let mut weight = self.get(&format!("{conv}.weight"), &[out_channels, per_out, kernel, kernel])?;
        let gamma = self.get(&format!("{bn}.weight"), &[out_channels])?;
        let beta = self.get(&format!("{bn}.bias"), &[out_channels])?;
        let mean = self.get(&format!("{bn}.running_mean"), &[out_channels])?;
        let var = self.get(&format!("{bn}.running_var"), &[out_channels])?;
        let row = per_out * kernel * kernel;
        let mut bias = vec![0f32; out_channels];
        for o in 0..out_channels {
            let scale = gamma[o] / (var[o] + self.eps).sqrt();
            weight[o * row..(o + 1) * row].iter_mut().for_each(|w| *w *= scale);
            bias[o] = beta[o] - mean[o] * scale;
        }
        if weight.iter().chain(&bias).any(|v| !v.is_finite()) {
            return Err(self.err(format!("{conv} / {bn}: weights that are not finite numbers")));
        }
        let matrix = if depthwise { None } else { Some(dense_matrix(&weight, out_channels, row)?) };
        if depthwise {
            // k·k rows of one weight per channel: the loop over channels reads them contiguously.
            weight = transpose(&weight, out_channels, kernel * kernel);
        }
        Ok(Conv { weight, matrix, bias, out_channels, in_channels, kernel, stride, relu6 })
    }
}

fn inference(e: candle_core::Error) -> EmbedError {
    EmbedError::Inference(e.to_string())
}

impl EfficientNetLite {
    fn load(path: &Path, eps: f32, hidden: usize) -> Result<Self> {
        let tensors = candle_core::safetensors::load(path, &Device::Cpu)
            .map_err(|e| EmbedError::Weights { path: path.to_path_buf(), message: e.to_string() })?;
        let w = Weights { path: path.to_path_buf(), tensors, eps };
        let stem = w.conv("_conv_stem", "_bn0", 32, 3, 3, 2, false, true)?;
        let mut blocks = Vec::new();
        let mut channels = 32;
        for &(repeats, kernel, stride, expand, out) in &LITE0_STAGES {
            for r in 0..repeats {
                let i = blocks.len();
                let p = format!("_blocks.{i}");
                let inner = channels * expand;
                let expand_conv = if expand == 1 {
                    None
                } else {
                    Some(w.conv(
                        &format!("{p}._expand_conv"),
                        &format!("{p}._bn0"),
                        inner,
                        channels,
                        1,
                        1,
                        false,
                        true,
                    )?)
                };
                let s = if r == 0 { stride } else { 1 };
                let depthwise =
                    w.conv(&format!("{p}._depthwise_conv"), &format!("{p}._bn1"), inner, inner, kernel, s, true, true)?;
                let project =
                    w.conv(&format!("{p}._project_conv"), &format!("{p}._bn2"), out, inner, 1, 1, false, false)?;
                blocks.push(Block { expand: expand_conv, depthwise, project, skip: s == 1 && channels == out });
                channels = out;
            }
        }
        let head = w.conv("_conv_head", "_bn1", hidden, channels, 1, 1, false, true)?;
        Ok(EfficientNetLite { stem, blocks, head })
    }

    /// The pooled, L2-normalised embedding of one prepared image (`3 × size × size`).
    fn forward(&self, input: Maps) -> Result<Vec<f32>> {
        let (n, c) = (input.height * input.width, input.channels);
        let input = Maps { data: transpose(&input.data, c, n), ..input };
        let mut x = dense(&self.stem, &input)?;
        for b in &self.blocks {
            // The block's input is kept only when the skip connection needs it.
            let (expanded, skip) = match (&b.expand, b.skip) {
                (Some(c), true) => (pointwise(c, x.clone())?, Some(x)),
                (Some(c), false) => (pointwise(c, x)?, None),
                (None, true) => (x.clone(), Some(x)),
                (None, false) => (x, None),
            };
            let mut y = pointwise(&b.project, depthwise(&b.depthwise, &expanded))?;
            if let Some(input) = skip {
                y.data.iter_mut().zip(&input.data).for_each(|(a, b)| *a += b);
            }
            x = y;
        }
        let x = pointwise(&self.head, x)?;
        let mut v = vec![0f32; x.channels];
        for pixel in x.data.chunks_exact(x.channels) {
            v.iter_mut().zip(pixel).for_each(|(a, b)| *a += b);
        }
        let norm = v.iter().map(|a| a * a).sum::<f32>().sqrt().max(1e-12);
        v.iter_mut().for_each(|a| *a /= norm);
        Ok(v)
    }
}

/// TensorFlow "same" padding along one axis: (output length, padding before).
fn same_padding(len: usize, kernel: usize, stride: usize) -> (usize, usize) {
    let out = len.div_ceil(stride);
    let total = ((out - 1) * stride + kernel).saturating_sub(len);
    (out, total / 2)
}

/// `rows × cols` row-major → `cols × rows` row-major.
fn transpose(m: &[f32], rows: usize, cols: usize) -> Vec<f32> {
    let mut out = vec![0f32; m.len()];
    for (r, row) in m.chunks_exact(cols).enumerate() {
        for (c, v) in row.iter().enumerate() {
            out[c * rows + r] = *v;
        }
    }
    out
}

/// A dense convolution's weights (`out × inner`) as the right-hand side of `(pixels × inner) · (inner × out)`.
fn dense_matrix(weight: &[f32], out: usize, inner: usize) -> Result<Tensor> {
    Tensor::from_vec(transpose(weight, out, inner), (inner, out), &Device::Cpu).map_err(inference)
}

/// Bias, then ReLU6 when the convolution has it, over one pixel's channels.
fn finish(c: &Conv, pixel: &mut [f32]) {
    if c.relu6 {
        pixel.iter_mut().zip(&c.bias).for_each(|(v, b)| *v = (*v + b).clamp(0.0, 6.0));
    } else {
        pixel.iter_mut().zip(&c.bias).for_each(|(v, b)| *v += b);
    }
}

/// `(pixels × in) · matrix (in × out)`, then bias and activation.
fn product(c: &Conv, x: Vec<f32>, pixels: usize, inner: usize, matrix: &Tensor) -> Result<Vec<f32>> {
    let input = Tensor::from_vec(x, (pixels, inner), &Device::Cpu).map_err(inference)?;
    let mut data =
        input.matmul(matrix).and_then(|t| t.flatten_all()).and_then(|t| t.to_vec1::<f32>()).map_err(inference)?;
    data.chunks_exact_mut(c.out_channels).for_each(|p| finish(c, p));
    Ok(data)
}

/// A dense k×k convolution (the stem) as one matrix product: each output pixel's patch as a row (zeros where the
/// padding is; entries in the weights' order, input channel then ky then kx) times the transposed weights.
fn dense(c: &Conv, x: &Maps) -> Result<Maps> {
    let (oh, pt) = same_padding(x.height, c.kernel, c.stride);
    let (ow, pl) = same_padding(x.width, c.kernel, c.stride);
    let (k, s, ci) = (c.kernel, c.stride, c.in_channels);
    let patch = ci * k * k;
    let mut rows = vec![0f32; oh * ow * patch];
    for oy in 0..oh {
        for ox in 0..ow {
            let row = &mut rows[(oy * ow + ox) * patch..][..patch];
            for ky in 0..k {
                let Some(y) = (oy * s + ky).checked_sub(pt).filter(|&y| y < x.height) else { continue };
                for kx in 0..k {
                    let Some(xx) = (ox * s + kx).checked_sub(pl).filter(|&v| v < x.width) else { continue };
                    let src = &x.data[(y * x.width + xx) * ci..][..ci];
                    for (i, v) in src.iter().enumerate() {
                        row[(i * k + ky) * k + kx] = *v;
                    }
                }
            }
        }
    }
    let matrix = c.matrix.as_ref().ok_or_else(|| EmbedError::Inference("dense convolution without a matrix".into()))?;
    let data = product(c, rows, oh * ow, patch, matrix)?;
    Ok(Maps { channels: c.out_channels, height: oh, width: ow, data })
}

/// A depthwise k×k convolution: each channel with its own kernel, accumulated along contiguous channels.
fn depthwise(c: &Conv, x: &Maps) -> Maps {
    let (oh, pt) = same_padding(x.height, c.kernel, c.stride);
    let (ow, pl) = same_padding(x.width, c.kernel, c.stride);
    let (k, s, ch) = (c.kernel, c.stride, x.channels);
    let mut data = vec![0f32; oh * ow * ch];
    for oy in 0..oh {
        for ox in 0..ow {
            let out = &mut data[(oy * ow + ox) * ch..][..ch];
            for ky in 0..k {
                let Some(y) = (oy * s + ky).checked_sub(pt).filter(|&y| y < x.height) else { continue };
                for kx in 0..k {
                    let Some(xx) = (ox * s + kx).checked_sub(pl).filter(|&v| v < x.width) else { continue };
                    let src = &x.data[(y * x.width + xx) * ch..][..ch];
                    let w = &c.weight[(ky * k + kx) * ch..][..ch];
                    out.iter_mut().zip(src).zip(w).for_each(|((o, v), w)| *o += w * v);
                }
            }
            finish(c, out);
        }
    }
    Maps { channels: ch, height: oh, width: ow, data }
}

/// A 1×1 convolution: `(pixels × in) · (in × out)`.
fn pointwise(c: &Conv, x: Maps) -> Result<Maps> {
    debug_assert_eq!(c.in_channels, x.channels);
    let matrix = c.matrix.as_ref().ok_or_else(|| EmbedError::Inference("pointwise without a matrix".into()))?;
    let data = product(c, x.data, x.height * x.width, x.channels, matrix)?;
    Ok(Maps { channels: c.out_channels, height: x.height, width: x.width, data })
}

/// Decodes an encoded image (JPEG, PNG, WebP, GIF, BMP; the format is read from its first bytes) to 8-bit RGB,
/// refusing images wider or taller than [`MAX_IMAGE_SIDE`] or that would take more than [`MAX_IMAGE_BYTES`].
pub fn decode_image(bytes: &[u8]) -> Result<image::RgbImage> {
    use image::{ImageReader, Limits};
    let bad = |message: String| EmbedError::BadImage { index: 0, message };
    if bytes.is_empty() {
        return Err(bad("the image is empty (0 bytes)".to_string()));
    }
    let mut reader = ImageReader::new(std::io::Cursor::new(bytes))
        .with_guessed_format()
        .map_err(|e| bad(format!("cannot read the image: {e}")))?;
    if reader.format().is_none() {
        return Err(bad(format!(
            "not an image in a known format (expected JPEG, PNG, WebP, GIF or BMP; the data starts with {})",
            hex_prefix(bytes)
        )));
    }
    let mut limits = Limits::default();
    limits.max_image_width = Some(MAX_IMAGE_SIDE);
    limits.max_image_height = Some(MAX_IMAGE_SIDE);
    limits.max_alloc = Some(MAX_IMAGE_BYTES);
    reader.limits(limits);
    let format = reader.format().map(|f| format!("{f:?}")).unwrap_or_default();
    let decoded = reader.decode().map_err(|e| match e {
        image::ImageError::Limits(l) => bad(format!(
            "the {format} image is too large to decode ({l}); the limits are {MAX_IMAGE_SIDE} pixels a side and \
             {} MiB decoded",
            MAX_IMAGE_BYTES >> 20
        )),
        other => bad(format!("cannot decode the {format} image: {other}")),
    })?;
    if decoded.width() == 0 || decoded.height() == 0 {
        return Err(bad("the image has no pixels".to_string()));
    }
    Ok(decoded.to_rgb8())
}

fn hex_prefix(bytes: &[u8]) -> String {
    bytes.iter().take(8).map(|b| format!("{b:02x}")).collect::<Vec<_>>().join(" ")
}

/// The network's input for `img`: the centre crop, resized to `image_size`², scaled per channel; `3 × S × S`.
pub fn prepare(img: &image::RgbImage, config: &ImageConfig) -> Vec<f32> {
    let (w, h) = img.dimensions();
    let side = ((config.crop_fraction * w.min(h) as f32) as u32).max(1);
    let (x0, y0) = ((w - side).div_ceil(2), (h - side).div_ceil(2));
    let crop = image::imageops::crop_imm(img, x0, y0, side, side).to_image();
    let s = config.image_size;
    let sized =
        if side == s { crop } else { image::imageops::resize(&crop, s, s, image::imageops::FilterType::CatmullRom) };
    pixels_to_input(sized.as_raw(), s as usize, config)
}

/// `S × S` RGB bytes (row-major, interleaved) → the scaled `3 × S × S` input.
pub fn pixels_to_input(rgb: &[u8], side: usize, config: &ImageConfig) -> Vec<f32> {
    let n = side * side;
    let mut out = vec![0f32; 3 * n];
    for (p, px) in rgb.chunks_exact(3).enumerate().take(n) {
        for c in 0..3 {
            out[c * n + p] = (f32::from(px[c]) - config.mean[c]) / config.std[c];
        }
    }
    out
}

/// An EfficientNet-Lite image model loaded from a directory (`config.json` + `model.safetensors`).
#[derive(Debug)]
pub struct ImageEmbedder {
    name: String,
    config: ImageConfig,
    net: EfficientNetLite,
    parallel: bool,
}

impl ImageEmbedder {
    /// Loads the model in `dir`.
    pub fn load(dir: &Path, options: &EmbedOptions) -> Result<Self> {
        let config = ImageConfig::load(dir)?;
        let weights = dir.join("model.safetensors");
        if !weights.is_file() {
            return Err(EmbedError::MissingFile { dir: dir.to_path_buf(), file: "model.safetensors" });
        }
        let net = EfficientNetLite::load(&weights, config.batch_norm_eps, config.hidden_size)?;
        let name = options.name.clone().unwrap_or_else(|| {
            dir.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_else(|| dir.display().to_string())
        });
        Ok(ImageEmbedder { name, config, net, parallel: options.parallel_batches })
    }

    /// The configuration read from the model directory.
    pub fn config(&self) -> &ImageConfig {
        &self.config
    }

    /// Embeds prepared inputs (each `3 × S × S`, as [`prepare`] makes them): `inputs.len() · dim` floats.
    pub fn embed_prepared(&self, inputs: Vec<Vec<f32>>) -> Result<Vec<f32>> {
        let s = self.config.image_size as usize;
        if let Some((i, v)) = inputs.iter().enumerate().find(|(_, v)| v.len() != 3 * s * s) {
            return Err(EmbedError::Inference(format!("input {i} has {} values, expected {}", v.len(), 3 * s * s)));
        }
        let run = |data: Vec<f32>| self.net.forward(Maps { channels: 3, height: s, width: s, data });
        let vectors: Vec<Result<Vec<f32>>> = if self.parallel && inputs.len() > 1 {
            inputs.into_par_iter().map(run).collect()
        } else {
            inputs.into_iter().map(run).collect()
        };
        let mut out = Vec::with_capacity(vectors.len() * self.config.hidden_size);
        for v in vectors {
            out.extend(v?);
        }
        Ok(out)
    }
}

impl Embedder for ImageEmbedder {
    fn model_name(&self) -> &str {
        &self.name
    }

    fn dim(&self) -> usize {
        self.config.hidden_size
    }

    fn modality(&self) -> Modality {
        Modality::Image
    }

    fn max_tokens(&self) -> usize {
        0
    }

    fn count_tokens(&self, _text: &str) -> Result<usize> {
        Err(EmbedError::WrongInput { model: self.name.clone(), takes: Modality::Image, got: Modality::Text })
    }

    fn embed_flat(&self, texts: &[&str]) -> Result<Vec<f32>> {
        if texts.is_empty() {
            return Ok(Vec::new());
        }
        Err(EmbedError::WrongInput { model: self.name.clone(), takes: Modality::Image, got: Modality::Text })
    }

    fn embed_images_flat(&self, images: &[&[u8]]) -> Result<Vec<f32>> {
        let prepare_one = |(i, bytes): (usize, &&[u8])| -> Result<Vec<f32>> {
            let img = decode_image(bytes).map_err(|e| match e {
                EmbedError::BadImage { message, .. } => EmbedError::BadImage { index: i, message },
                other => other,
            })?;
            Ok(prepare(&img, &self.config))
        };
        let inputs: Vec<Vec<f32>> = if self.parallel && images.len() > 1 {
            images.par_iter().enumerate().map(prepare_one).collect::<Result<_>>()?
        } else {
            images.iter().enumerate().map(prepare_one).collect::<Result<_>>()?
        };
        self.embed_prepared(inputs)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_padding_puts_the_extra_row_after_the_image() {
        assert_eq!(same_padding(224, 3, 2), (112, 0)); // total 1: none before, one after
        assert_eq!(same_padding(56, 5, 2), (28, 1)); // total 3: one before, two after
        assert_eq!(same_padding(14, 5, 1), (14, 2));
        assert_eq!(same_padding(7, 3, 1), (7, 1));
        assert_eq!(same_padding(15, 3, 2), (8, 1)); // odd sizes
    }

    fn conv(k: usize, s: usize, channels: usize, depthwise: bool) -> Conv {
        let per = if depthwise { 1 } else { channels };
        let weight: Vec<f32> = (0..channels * per * k * k).map(|i| ((i * 37 % 11) as f32 - 5.0) / 7.0).collect();
        Conv {
            weight,
            matrix: None,
            bias: (0..channels).map(|i| i as f32 * 0.1).collect(),
            out_channels: channels,
            in_channels: channels,
            kernel: k,
            stride: s,
            relu6: false,
        }
    }

    #[test]
    fn depthwise_equals_a_dense_convolution_with_one_channel_per_group() {
        // The fast loop against the obviously-correct one, over odd sizes, both strides and both kernels.
        for (h, w) in [(9, 7), (8, 8), (5, 11), (1, 1), (2, 3)] {
            for (k, s) in [(3, 1), (3, 2), (5, 1), (5, 2)] {
                let x = Maps {
                    channels: 2,
                    height: h,
                    width: w,
                    data: (0..2 * h * w).map(|i| ((i * 13 % 17) as f32 - 8.0) / 3.0).collect(),
                };
                // Depthwise weights are stored k·k rows × channels; the data is pixel-major.
                let c = conv(k, s, 2, true);
                let fast = depthwise(&c, &x);
                for ch in 0..2 {
                    let weight: Vec<f32> = (0..k * k).map(|j| c.weight[j * 2 + ch]).collect();
                    let single = Conv {
                        matrix: Some(dense_matrix(&weight, 1, k * k).expect("matrix")),
                        weight,
                        bias: vec![c.bias[ch]],
                        out_channels: 1,
                        in_channels: 1,
                        ..conv(k, s, 1, false)
                    };
                    let plane = Maps {
                        channels: 1,
                        height: h,
                        width: w,
                        data: x.data.iter().skip(ch).step_by(2).copied().collect(),
                    };
                    let slow = dense(&single, &plane).expect("dense");
                    assert_eq!((slow.height, slow.width), (fast.height, fast.width));
                    for (a, b) in fast.data.iter().skip(ch).step_by(2).zip(&slow.data) {
                        assert!((a - b).abs() < 1e-5, "{h}x{w} k{k} s{s}: {a} vs {b}");
                    }
                }
            }
        }
    }

    #[test]
    fn bad_images_are_refused_with_the_reason() {
        let msg = |bytes: &[u8]| decode_image(bytes).unwrap_err().to_string();
        assert!(msg(b"").contains("empty"), "{}", msg(b""));
        assert!(msg(b"hello, not an image").contains("not an image in a known format"));
        // A PNG cut short after its header.
        let mut png = Vec::new();
        image::RgbImage::from_pixel(4, 4, image::Rgb([1, 2, 3]))
            .write_to(&mut std::io::Cursor::new(&mut png), image::ImageFormat::Png)
            .expect("encode");
        let m = msg(&png[..png.len() - 20]);
        assert!(m.contains("cannot decode the Png image"), "{m}");
        assert!(decode_image(&png).is_ok());
        // A header claiming 100,000 × 100,000 pixels is refused before anything that size is allocated.
        let mut huge = png.clone();
        huge[16..20].copy_from_slice(&100_000u32.to_be_bytes());
        huge[20..24].copy_from_slice(&100_000u32.to_be_bytes());
        let crc = crc32(&huge[12..29]); // the IHDR chunk's type and data, so the header itself is valid
        huge[29..33].copy_from_slice(&crc.to_be_bytes());
        let m = msg(&huge);
        assert!(m.contains("too large"), "{m}");
    }

    /// CRC-32 (IEEE), bit by bit: enough for a test's PNG header.
    fn crc32(bytes: &[u8]) -> u32 {
        let mut crc = !0u32;
        for &b in bytes {
            crc ^= u32::from(b);
            for _ in 0..8 {
                crc = if crc & 1 == 1 { (crc >> 1) ^ 0xEDB8_8320 } else { crc >> 1 };
            }
        }
        !crc
    }

    #[test]
    fn prepare_takes_the_centre_crop_and_scales() {
        let config = ImageConfig {
            model_type: EFFICIENTNET_LITE.into(),
            variant: "lite0".into(),
            image_size: 4,
            crop_fraction: 0.5,
            mean: [127.0; 3],
            std: [128.0; 3],
            batch_norm_eps: 1e-3,
            hidden_size: 8,
            source: None,
        };
        // 8 × 12 image: the crop is the 4 × 4 centre square (x 4..8, y 2..6), which is white; the rest is black.
        let mut img = image::RgbImage::new(12, 8);
        for y in 2..6 {
            for x in 4..8 {
                img.put_pixel(x, y, image::Rgb([255, 255, 255]));
            }
        }
        let input = prepare(&img, &config);
        assert_eq!(input.len(), 3 * 16);
        assert!(input.iter().all(|&v| (v - 1.0).abs() < 1e-6), "{input:?}");
    }
}
