//! GPUs: the devices llama.cpp's ggml found, how much of a model goes to them, and what a
//! loaded model holds on each. The rules are Ollama's (0.30+, which runs llama-server):
//!
//! - `num_gpu` unset (-1): llama.cpp's own fit (`common_fit_params`, llama-server's `--fit`)
//!   offloads as many layers as leave a margin free on each device: 1 GiB, as llama-server's
//!   default `--fit-target`, plus `OLLAMA_GPU_OVERHEAD`, plus what rollama's other loaded
//!   models hold there that the driver does not report as used. It accounts for the weights,
//!   the KV cache of `num_ctx × OLLAMA_NUM_PARALLEL` and the compute buffers.
//! - `num_gpu: N` offloads N layers (`-ngl N`); `0` keeps the model on the CPU.
//! - `main_gpu` puts the whole model on that device (`--split-mode none --main-gpu`).
//! - Several devices: the model goes to the one device it fits on best unless
//!   `OLLAMA_SCHED_SPREAD` is set; otherwise llama.cpp splits the layers by free memory.
//! - `OLLAMA_FLASH_ATTENTION` (on/off; unset: llama.cpp decides per device) and
//!   `OLLAMA_KV_CACHE_TYPE` (`f16`, `q8_0`, `q4_0`) set the context's attention and cache.
//!
//! Device selection by `CUDA_VISIBLE_DEVICES`, `HIP_VISIBLE_DEVICES`/`ROCR_VISIBLE_DEVICES` and
//! `GGML_VK_VISIBLE_DEVICES` happens in the driver runtimes and ggml themselves, before any
//! device is listed here, as with Ollama's runner.

use serde::Serialize;

/// llama-server's default `--fit-target`: what its fit leaves free on each device.
pub const FIT_MARGIN: u64 = 1024 * 1024 * 1024;

/// One GPU as ggml lists it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Device {
    /// ggml's device index (among all devices, the CPU's included).
    pub index: usize,
    /// ggml's name: `Vulkan0`, `CUDA0`, `ROCm0`, `MTL0`.
    pub name: String,
    pub description: String,
    /// The backend: `Vulkan`, `CUDA`, `ROCm`, `Metal`.
    pub library: String,
    pub total: u64,
    pub free: u64,
    pub integrated: bool,
}

/// `OLLAMA_KV_CACHE_TYPE`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KvCacheType {
    F16,
    Q8_0,
    Q4_0,
}

impl KvCacheType {
    /// Ollama's reading: `f16`, `q8_0`, `q4_0` in any case; anything else is the default
    /// (f16), with a warning.
    pub fn parse(value: &str) -> Option<KvCacheType> {
        match value.trim().to_ascii_lowercase().as_str() {
            "" | "f16" => Some(KvCacheType::F16),
            "q8_0" => Some(KvCacheType::Q8_0),
            "q4_0" => Some(KvCacheType::Q4_0),
            _ => None,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            KvCacheType::F16 => "f16",
            KvCacheType::Q8_0 => "q8_0",
            KvCacheType::Q4_0 => "q4_0",
        }
    }
}

/// The server-wide GPU settings, from Ollama's variables.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Settings {
    /// `OLLAMA_GPU_OVERHEAD`: bytes to leave free on each GPU.
    pub overhead: u64,
    /// `OLLAMA_SCHED_SPREAD`: split a model over all GPUs even where one would hold it.
    pub spread: bool,
    /// `OLLAMA_FLASH_ATTENTION`: Some(on/off) when set, None for llama.cpp's automatic choice.
    pub flash_attention: Option<bool>,
    pub kv_cache_type: KvCacheType,
}

impl Settings {
    pub fn from_env() -> Settings {
        let kv = crate::env::var("OLLAMA_KV_CACHE_TYPE");
        let kv_cache_type = KvCacheType::parse(&kv).unwrap_or_else(|| {
            eprintln!("warning: OLLAMA_KV_CACHE_TYPE={kv} is not f16, q8_0 or q4_0; using f16");
            KvCacheType::F16
        });
        let flash = crate::env::var("OLLAMA_FLASH_ATTENTION");
        Settings {
            overhead: crate::env::var("OLLAMA_GPU_OVERHEAD").parse().unwrap_or(0),
            spread: crate::env::bool_var("OLLAMA_SCHED_SPREAD", false),
            flash_attention: (!flash.is_empty())
                .then(|| crate::env::bool_var("OLLAMA_FLASH_ATTENTION", false)),
            kv_cache_type,
        }
    }
}

/// Free memory of `device` as rollama sees it: what the driver reports, less what
/// rollama's other models hold there that the driver does not show as used (some drivers,
/// lavapipe among them, report no usage at all).
pub fn available(device: &Device, in_use: u64) -> u64 {
    let reported_used = device.total.saturating_sub(device.free);
    device
        .free
        .saturating_sub(in_use.saturating_sub(reported_used))
}

/// Whether ggml found any GPU (asked once: devices do not come and go while a server runs).
pub fn present() -> bool {
    static PRESENT: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    *PRESENT.get_or_init(|| !devices().is_empty())
}

/// Of `in_use` (bytes per device name), what is held on `device`.
pub fn held_on(in_use: &[(String, u64)], device: &str) -> u64 {
    in_use
        .iter()
        .filter(|(name, _)| name == device)
        .map(|(_, bytes)| bytes)
        .sum()
}

/// The server's [`Settings`], read once.
pub fn settings() -> &'static Settings {
    static SETTINGS: std::sync::OnceLock<Settings> = std::sync::OnceLock::new();
    SETTINGS.get_or_init(Settings::from_env)
}

/// Where a request wants its model: Ollama's `num_gpu` and `main_gpu` options.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Placement {
    /// Layers to offload; None (`num_gpu` -1 or unset): as many as fit.
    pub num_gpu: Option<u32>,
    /// The device (index among the GPUs) that takes the whole model.
    pub main_gpu: Option<usize>,
}

impl Placement {
    /// From the request's options (`num_gpu` below 0 means automatic, as in Ollama).
    pub fn from_options(num_gpu: i64, main_gpu: Option<i64>) -> Placement {
        Placement {
            num_gpu: u32::try_from(num_gpu).ok(),
            main_gpu: main_gpu.and_then(|g| usize::try_from(g).ok()),
        }
    }
}

/// What a loaded model holds where, from llama.cpp's report of its buffers.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Footprint {
    /// Bytes per GPU, by ggml device name (weights, KV cache, compute and output buffers).
    pub devices: Vec<(String, u64)>,
    /// Bytes in host memory (mapped weights counted once).
    pub host: u64,
    /// Of the model's layers (its blocks and the output layer), how many went to a GPU.
    pub gpu_layers: u32,
    pub layers: u32,
    /// KV cache bytes on GPUs and on the host.
    pub kv_device: u64,
    pub kv_host: u64,
}

impl Footprint {
    /// Bytes on all GPUs: Ollama's `size_vram`.
    pub fn vram(&self) -> u64 {
        self.devices.iter().map(|(_, bytes)| bytes).sum()
    }

    /// Ollama's `size`: everything, or exactly the GPU part when every layer went to a GPU
    /// (the token embeddings llama.cpp keeps in host memory then do not make it "partial").
    /// Whether every layer went to a GPU.
    pub fn whole(&self) -> bool {
        self.layers > 0 && self.gpu_layers >= self.layers
    }

    pub fn size(&self) -> u64 {
        if self.whole() {
            self.vram()
        } else {
            self.vram() + self.host
        }
    }

    /// Reads llama.cpp's load log: `<backend> <kind> buffer size = <n> MiB` lines and
    /// `offloaded <n>/<m> layers to GPU`. A buffer reported twice (a retried allocation) counts
    /// once, the last time. `file_size`: the model file, which bounds the mapped weights:
    /// with partial offload, llama.cpp reports the mapped span of the host's tensors, which
    /// covers the offloaded ones in between (Ollama trims it the same way).
    pub fn from_log(log: &str, file_size: u64) -> Footprint {
        let mut buffers: Vec<(String, String, String, u64)> = Vec::new();
        let mut footprint = Footprint::default();
        for line in log.lines() {
            if let Some((done, total)) = offloaded(line) {
                footprint.gpu_layers = done;
                footprint.layers = total;
                continue;
            }
            let Some((component, backend, kind, bytes)) = buffer_line(line) else {
                continue;
            };
            match buffers.iter_mut().find(|(c, b, k, _)| {
                (c.as_str(), b.as_str(), k.as_str()) == (component, backend, kind)
            }) {
                Some(entry) => entry.3 = bytes,
                None => buffers.push((component.into(), backend.into(), kind.into(), bytes)),
            }
        }
        let mut mapped_host_model = 0;
        let mut file_backed_model = 0;
        for (_, backend, kind, bytes) in &buffers {
            let gpu = is_gpu_buffer(backend);
            if kind == "model" && (gpu || backend.ends_with("_Mapped")) {
                file_backed_model += bytes;
                if !gpu {
                    mapped_host_model += bytes;
                }
            }
            if kind == "KV" {
                if gpu {
                    footprint.kv_device += bytes;
                } else {
                    footprint.kv_host += bytes;
                }
            }
            if gpu {
                let name = device_name(backend);
                match footprint.devices.iter_mut().find(|(n, _)| n == name) {
                    Some(entry) => entry.1 += bytes,
                    None => footprint.devices.push((name.to_string(), *bytes)),
                }
            } else {
                footprint.host += bytes;
            }
        }
        if file_size > 0 && file_backed_model > file_size {
            footprint.host -= mapped_host_model.min(file_backed_model - file_size);
        }
        footprint
    }
}

/// `load_tensors: offloaded 31/31 layers to GPU`.
fn offloaded(line: &str) -> Option<(u32, u32)> {
    let rest = line.split("offloaded ").nth(1)?;
    let (counts, tail) = rest.split_once(' ')?;
    if !tail.starts_with("layers to GPU") {
        return None;
    }
    let (done, total) = counts.split_once('/')?;
    Some((done.parse().ok()?, total.parse().ok()?))
}

/// `llama_kv_cache:    Vulkan0 KV buffer size =    22.50 MiB` → (component, backend, kind, bytes).
fn buffer_line(line: &str) -> Option<(&str, &str, &str, u64)> {
    let (head, size) = line.split_once(" buffer size")?;
    let size = size.trim_start().strip_prefix('=')?.trim();
    let mib: f64 = size.strip_suffix("MiB")?.trim().parse().ok()?;
    let (component, head) = head.split_once(':')?;
    let mut words = head.split_whitespace();
    let backend = words.next()?;
    let kind = words.next()?;
    if words.next().is_some() || !matches!(kind, "model" | "KV" | "compute" | "output" | "RS") {
        return None;
    }
    Some((
        component.trim(),
        backend,
        kind,
        (mib * 1024.0 * 1024.0).round() as u64,
    ))
}

/// Whether a ggml buffer name is device memory: not the CPU's, not a GPU backend's pinned
/// host memory (`CUDA_Host`), but a device's mapped weights (`MTL0_Mapped`) are.
fn is_gpu_buffer(name: &str) -> bool {
    !(name == "CPU" || name == "BLAS" || name.starts_with("CPU_") || name.ends_with("_Host"))
}

/// The device a buffer name belongs to: `MTL0_Mapped` → `MTL0`.
fn device_name(backend: &str) -> &str {
    ["_Mapped", "_REPACK", "_Private"]
        .iter()
        .find_map(|suffix| backend.strip_suffix(suffix))
        .unwrap_or(backend)
}

/// GiB with one decimal, as Ollama's log prints memory.
pub fn gib(bytes: u64) -> String {
    format!("{:.1} GiB", bytes as f64 / (1024.0 * 1024.0 * 1024.0))
}

#[cfg(test)]
mod tests {
    use super::*;

    const MIB: u64 = 1024 * 1024;

    #[test]
    fn full_offload_counts_the_gpu_only() {
        let log = "\
load_tensors: offloading 30 repeating layers to GPU
load_tensors: offloaded 31/31 layers to GPU
load_tensors:   CPU_Mapped model buffer size =    10.00 MiB
load_tensors:      Vulkan0 model buffer size =    90.00 MiB
llama_kv_cache:    Vulkan0 KV buffer size =    20.00 MiB
llama_context: Vulkan_Host  output buffer size =     0.50 MiB
llama_context:    Vulkan0 compute buffer size =    30.00 MiB
llama_context: Vulkan_Host compute buffer size =     2.00 MiB
";
        let footprint = Footprint::from_log(log, 100 * MIB);
        assert_eq!(footprint.vram(), 140 * MIB);
        assert_eq!(footprint.size(), 140 * MIB);
        assert_eq!((footprint.gpu_layers, footprint.layers), (31, 31));
        assert_eq!(footprint.devices, vec![("Vulkan0".to_string(), 140 * MIB)]);
        assert_eq!((footprint.kv_device, footprint.kv_host), (20 * MIB, 0));
    }

    #[test]
    fn partial_offload_trims_the_mapped_span() {
        // 10 of 31 layers on the GPU; the host's mapped span covers the whole 100 MiB file.
        let log = "\
load_tensors: offloaded 10/31 layers to GPU
load_tensors:   CPU_Mapped model buffer size =   100.00 MiB
load_tensors:      Vulkan0 model buffer size =    30.00 MiB
llama_kv_cache:        CPU KV buffer size =    14.00 MiB
llama_kv_cache:    Vulkan0 KV buffer size =     6.00 MiB
llama_context:    Vulkan0 compute buffer size =    10.00 MiB
llama_context:        CPU compute buffer size =     5.00 MiB
";
        let footprint = Footprint::from_log(log, 100 * MIB);
        assert_eq!(footprint.vram(), 46 * MIB);
        // 100 + 30 file-backed, 30 over the file: the host keeps 70 of its mapped 100.
        assert_eq!(footprint.host, (70 + 14 + 5) * MIB);
        assert_eq!(footprint.size(), (46 + 89) * MIB);
    }

    #[test]
    fn cpu_only_and_repeats() {
        let log = "\
llama_context:        CPU compute buffer size =     5.00 MiB
llama_context:        CPU compute buffer size =     6.00 MiB
load_tensors:   CPU_REPACK model buffer size =    12.00 MiB
something else = 3 MiB
";
        let footprint = Footprint::from_log(log, 100 * MIB);
        assert_eq!(footprint.vram(), 0);
        assert_eq!(footprint.host, 18 * MIB);
    }

    #[test]
    fn kv_cache_types_as_ollama_reads_them() {
        assert_eq!(KvCacheType::parse("Q8_0"), Some(KvCacheType::Q8_0));
        assert_eq!(KvCacheType::parse(""), Some(KvCacheType::F16));
        assert_eq!(KvCacheType::parse("q4_0"), Some(KvCacheType::Q4_0));
        assert_eq!(KvCacheType::parse("q5_1"), None);
    }

    #[test]
    fn placement_from_options() {
        assert_eq!(Placement::from_options(-1, None), Placement::default());
        assert_eq!(Placement::from_options(0, None).num_gpu, Some(0));
        assert_eq!(Placement::from_options(12, Some(1)).main_gpu, Some(1));
    }
}

#[cfg(feature = "llamacpp")]
pub use llama_side::*;

/// The parts that call llama.cpp.
#[cfg(feature = "llamacpp")]
mod llama_side {
    #![allow(unsafe_code, reason = "the FFI boundary of device_shim.cpp")]

    use super::{available, held_on, Device, Footprint, KvCacheType, Settings, FIT_MARGIN};
    use crate::engine::{EngineError, LoadOptions};
    use llama_cpp_2::context::params::{KvCacheType as LlamaKv, LlamaContextParams};
    use llama_cpp_2::model::params::{LlamaModelParams, LlamaSplitMode};
    use llama_cpp_2::LlamaBackendDeviceType;
    use std::ffi::{c_char, CStr, CString};
    use std::path::Path;
    use std::pin::Pin;

    extern "C" {
        fn rollama_log_install(to_stderr: bool);
        fn rollama_log_capture_start();
        fn rollama_log_capture_take() -> *mut c_char;
    }

    /// Makes device_shim.cpp llama.cpp's log callback (lines to stderr when `to_stderr`).
    pub(in crate::engine) fn install_log(to_stderr: bool) {
        unsafe { rollama_log_install(to_stderr) }
    }

    /// llama.cpp's log lines while `body` runs (loads are serialised by the scheduler, so
    /// the lines are this load's).
    pub(in crate::engine) fn capture_log<T>(body: impl FnOnce() -> T) -> (T, String) {
        unsafe { rollama_log_capture_start() };
        let value = body();
        let raw = unsafe { rollama_log_capture_take() };
        if raw.is_null() {
            return (value, String::new());
        }
        let text = unsafe { CStr::from_ptr(raw) }
            .to_string_lossy()
            .into_owned();
        unsafe { libc::free(raw.cast()) };
        (value, text)
    }

    /// The GPUs ggml found (integrated ones too), in ggml's order.
    pub fn devices() -> Vec<Device> {
        if crate::engine::llama::backend().is_err() {
            return Vec::new();
        }
        llama_cpp_2::list_llama_ggml_backend_devices()
            .into_iter()
            .filter(|d| {
                matches!(
                    d.device_type,
                    LlamaBackendDeviceType::Gpu | LlamaBackendDeviceType::IntegratedGpu
                )
            })
            .map(|d| Device {
                index: d.index,
                name: d.name,
                description: d.description,
                library: d.backend,
                total: d.memory_total as u64,
                free: d.memory_free as u64,
                integrated: d.device_type == LlamaBackendDeviceType::IntegratedGpu,
            })
            .collect()
    }

    /// The context settings Ollama's variables control: flash attention and the KV cache type.
    pub(in crate::engine) fn cache_settings(
        params: LlamaContextParams,
        settings: &Settings,
    ) -> LlamaContextParams {
        let flash = match settings.flash_attention {
            Some(true) => llama_cpp_sys_2::LLAMA_FLASH_ATTN_TYPE_ENABLED,
            Some(false) => llama_cpp_sys_2::LLAMA_FLASH_ATTN_TYPE_DISABLED,
            None => llama_cpp_sys_2::LLAMA_FLASH_ATTN_TYPE_AUTO,
        };
        // A quantized cache needs flash attention (llama.cpp refuses a quantized V cache
        // without it): turned off explicitly, the cache stays f16, as Ollama did.
        let kv = match (settings.kv_cache_type, settings.flash_attention) {
            (KvCacheType::F16, _) | (_, Some(false)) => LlamaKv::F16,
            (KvCacheType::Q8_0, _) => LlamaKv::Q8_0,
            (KvCacheType::Q4_0, _) => LlamaKv::Q4_0,
        };
        params
            .with_flash_attention_policy(flash)
            .with_type_k(kv)
            .with_type_v(kv)
    }

    /// The devices a model may use, in the order llama.cpp will number them: discrete GPUs,
    /// else integrated ones (llama.cpp's own default).
    fn usable(devices: &[Device]) -> Vec<Device> {
        let discrete: Vec<Device> = devices.iter().filter(|d| !d.integrated).cloned().collect();
        if discrete.is_empty() {
            devices.to_vec()
        } else {
            discrete
        }
    }

    /// The model parameters for loading `path` as Ollama would place it: `placement` from the
    /// request, `in_use` the bytes rollama's loaded models hold per device name, `context` the
    /// context the model will run with (the fit measures its cache and compute buffers).
    pub(in crate::engine) fn model_params(
        path: &Path,
        options: &LoadOptions,
        settings: &Settings,
        context: &mut LlamaContextParams,
    ) -> Result<Pin<Box<LlamaModelParams>>, EngineError> {
        let placement = options.placement;
        let in_use = &options.gpu_in_use;
        let predicted = options.predicted_vram;
        let all = usable(&devices());
        let params = LlamaModelParams::default();
        if all.is_empty() {
            return Ok(Box::pin(params));
        }
        if placement.num_gpu == Some(0) {
            return Ok(Box::pin(cpu_only()?));
        }
        let used = |d: &Device| held_on(in_use, &d.name);
        let room = |d: &Device| available(d, used(d)).saturating_sub(settings.overhead);
        // One device: main_gpu, or (without OLLAMA_SCHED_SPREAD) the one with the most room
        // when the model fits there.
        let chosen: Vec<Device> = match placement.main_gpu {
            Some(main) => vec![all.get(main).unwrap_or(&all[0]).clone()],
            None if all.len() > 1 && !settings.spread => {
                let best = all.iter().max_by_key(|d| room(d)).cloned();
                match best {
                    Some(best) if room(&best) >= predicted => vec![best],
                    _ => all.clone(),
                }
            }
            None => all.clone(),
        };
        let indices: Vec<usize> = chosen.iter().map(|d| d.index).collect();
        let mut params = params
            .with_devices(&indices)
            .map_err(|e| EngineError::Failed(format!("failed to load model: {e}")))?;
        if chosen.len() == 1 {
            params = params
                .with_split_mode(LlamaSplitMode::None)
                .with_main_gpu(0);
        }
        if let Some(layers) = placement.num_gpu {
            return Ok(Box::pin(params.with_n_gpu_layers(layers)));
        }
        let mut params = Box::pin(params);
        let max_devices = unsafe { llama_cpp_sys_2::llama_max_devices() }.max(chosen.len());
        let mut margins = vec![FIT_MARGIN as usize; max_devices];
        for (slot, device) in chosen.iter().enumerate() {
            // The fit sees the driver's free memory; what it does not show as used, and the
            // overhead, are added to the margin.
            let hidden = used(device).saturating_sub(device.total.saturating_sub(device.free));
            margins[slot] = (FIT_MARGIN + settings.overhead + hidden) as usize;
        }
        let path = CString::new(path.as_os_str().as_encoded_bytes())
            .map_err(|_| EngineError::Failed("the model path holds a NUL byte".into()))?;
        let fitted = params.as_mut().fit_params(
            &path,
            context,
            &mut margins,
            0,
            llama_cpp_sys_2::GGML_LOG_LEVEL_ERROR,
        );
        if let Err(e) = fitted {
            // llama-server goes on with its defaults then; keeping the model off the GPUs is
            // the choice that cannot run out of device memory.
            if options.require_full {
                return Err(EngineError::NotWhollyOnGpu);
            }
            eprintln!(
                "warning: fitting the model to GPU memory failed ({e}); loading it on the CPU"
            );
            return Ok(Box::pin(cpu_only()?));
        }
        // The fit leaves `n_gpu_layers` at -1 (all) when everything fits; it moves experts of
        // a mixture-of-experts model to the CPU with buffer overrides.
        let layers = params.n_gpu_layers();
        let whole = (layers < 0 || options.layers == 0 || layers as u32 >= options.layers)
            && params.tensor_buft_override_patterns().is_empty();
        if options.require_full && !whole {
            return Err(EngineError::NotWhollyOnGpu);
        }
        Ok(params)
    }

    /// Parameters that keep a model off every GPU. No layers is not enough: llama.cpp still
    /// runs large batches' matrix products on a GPU (and keeps a compute buffer there) unless
    /// the model has no devices at all.
    fn cpu_only() -> Result<LlamaModelParams, EngineError> {
        LlamaModelParams::default()
            .with_n_gpu_layers(0)
            .with_devices(&[])
            .map_err(|e| EngineError::Failed(format!("failed to load model: {e}")))
    }

    /// What the model holds where, from the load's log.
    pub(in crate::engine) fn footprint(log: &str, path: &Path) -> Footprint {
        let size = std::fs::metadata(path).map(|m| m.len()).unwrap_or(0);
        Footprint::from_log(log, size)
    }
}

#[cfg(not(feature = "llamacpp"))]
pub fn devices() -> Vec<Device> {
    Vec::new()
}

/// The layers llama.cpp offloads of a model: its blocks and the output layer (0 if unknown).
pub fn layers(gguf: &crate::gguf::Gguf) -> u32 {
    gguf.architecture()
        .and_then(|arch| gguf.get(&format!("{arch}.block_count")))
        .and_then(crate::gguf::Value::as_u64)
        .map_or(0, |blocks| blocks as u32 + 1)
}

/// Ollama's quick estimate of what a model needs on GPUs before loading it (its
/// `PredictServerVRAM`): the file, plus an f16 KV cache of `context` tokens. It errs high, to
/// decide whether another model must make room first.
pub fn predict(file_size: u64, gguf: &crate::gguf::Gguf, context: u64) -> u64 {
    let value = |key: &str| {
        gguf.architecture()
            .and_then(|arch| gguf.get(&format!("{arch}.{key}")))
            .and_then(|v| match v {
                crate::gguf::Value::Array(items) => items.iter().filter_map(|i| i.as_u64()).max(),
                other => other.as_u64(),
            })
            .unwrap_or(0)
    };
    let layers = value("block_count");
    let heads = value("attention.head_count");
    let kv_heads = match value("attention.head_count_kv") {
        0 => 1,
        n => n,
    };
    let head_dim = match heads {
        0 => 0,
        h => value("embedding_length") / h,
    };
    file_size + 2 * layers * kv_heads * head_dim * context * 2
}
