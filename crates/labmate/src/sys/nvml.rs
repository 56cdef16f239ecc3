//! NVML, the NVIDIA driver's management library, loaded at run time
//! (`dlopen`), so that labmate neither links against it nor needs it: on a
//! machine without the library or a working driver there is simply no
//! [`Nvml`]. Only the few readings system metrics take are bound.

use std::ffi::{CStr, c_char, c_uint, c_void};
use std::sync::OnceLock;

// NVML's C interface, as declared in nvml.h. Enums and nvmlReturn_t are C
// enums, passed as unsigned int; a device handle is an opaque pointer.
type Handle = *mut c_void;
type Ret = c_uint;
const NVML_SUCCESS: Ret = 0;
const NVML_TEMPERATURE_GPU: c_uint = 0;
/// NVML_DEVICE_UUID_V2_BUFFER_SIZE.
const UUID_BUFFER: usize = 96;

#[repr(C)]
#[derive(Default)]
struct Utilization {
    gpu: c_uint,
    memory: c_uint,
}

#[repr(C)]
#[derive(Default)]
struct Memory {
    total: u64,
    free: u64,
    used: u64,
}

/// The NVML entry points this module uses, resolved once. NVML is
/// thread-safe, and the library stays loaded for the life of the process.
pub struct Nvml {
    count: unsafe extern "C" fn(*mut c_uint) -> Ret,
    handle: unsafe extern "C" fn(c_uint, *mut Handle) -> Ret,
    uuid: unsafe extern "C" fn(Handle, *mut c_char, c_uint) -> Ret,
    utilization: unsafe extern "C" fn(Handle, *mut Utilization) -> Ret,
    memory: unsafe extern "C" fn(Handle, *mut Memory) -> Ret,
    temperature: unsafe extern "C" fn(Handle, c_uint, *mut c_uint) -> Ret,
    power: unsafe extern "C" fn(Handle, *mut c_uint) -> Ret,
}

/// One GPU, by its NVML handle, valid for as long as NVML is loaded (the
/// life of the process).
#[derive(Clone, Copy)]
pub struct Device<'a> {
    nvml: &'a Nvml,
    handle: Handle,
}

/// NVML, loaded and initialised on first use; `None` on machines without
/// the library or a working driver, which is the normal case, not an error.
pub fn nvml() -> Option<&'static Nvml> {
    static NVML: OnceLock<Option<Nvml>> = OnceLock::new();
    NVML.get_or_init(load).as_ref()
}

fn load() -> Option<Nvml> {
    // SAFETY: the name is a NUL-terminated constant; dlopen has no other precondition.
    let lib = unsafe { libc::dlopen(c"libnvidia-ml.so.1".as_ptr(), libc::RTLD_NOW | libc::RTLD_LOCAL) };
    if lib.is_null() {
        return None;
    }
    // SAFETY: `lib` is a live handle to NVML.
    let loaded = unsafe { bind(lib) };
    if loaded.is_none() {
        // SAFETY: `lib` came from dlopen and none of its symbols is kept.
        unsafe { libc::dlclose(lib) };
    }
    loaded
}

/// Resolves the entry points and initialises NVML.
///
/// # Safety
/// `lib` must be a live dlopen handle to libnvidia-ml.
unsafe fn bind(lib: *mut c_void) -> Option<Nvml> {
    // SAFETY: each function-pointer type is the nvml.h signature of its symbol.
    let (init, nvml) = unsafe {
        let init: unsafe extern "C" fn() -> Ret = symbol(lib, c"nvmlInit_v2")?;
        let nvml = Nvml {
            count: symbol(lib, c"nvmlDeviceGetCount_v2")?,
            handle: symbol(lib, c"nvmlDeviceGetHandleByIndex_v2")?,
            uuid: symbol(lib, c"nvmlDeviceGetUUID")?,
            utilization: symbol(lib, c"nvmlDeviceGetUtilizationRates")?,
            memory: symbol(lib, c"nvmlDeviceGetMemoryInfo")?,
            temperature: symbol(lib, c"nvmlDeviceGetTemperature")?,
            power: symbol(lib, c"nvmlDeviceGetPowerUsage")?,
        };
        (init, nvml)
    };
    // SAFETY: nvmlInit_v2 takes no arguments; the library is loaded.
    (unsafe { init() } == NVML_SUCCESS).then_some(nvml)
}

/// Resolves `name` in `lib` as a function pointer of type `F`.
///
/// # Safety
/// `F` must be the C function-pointer type of the symbol `name`.
unsafe fn symbol<F: Copy>(lib: *mut c_void, name: &CStr) -> Option<F> {
    const { assert!(size_of::<F>() == size_of::<*mut c_void>()) };
    // SAFETY: `lib` is a live dlopen handle and `name` is NUL-terminated.
    let p = unsafe { libc::dlsym(lib, name.as_ptr()) };
    if p.is_null() {
        return None;
    }
    // SAFETY: the sizes match (checked at compile time) and the caller
    // vouches that the symbol has type `F`.
    Some(unsafe { std::mem::transmute_copy::<*mut c_void, F>(&p) })
}

impl Nvml {
    /// How many GPUs NVML sees; 0 when it cannot say.
    pub fn count(&self) -> u32 {
        let mut n: c_uint = 0;
        // SAFETY: NVML is initialised and `n` is a valid out-pointer.
        let ok = unsafe { (self.count)(&mut n) } == NVML_SUCCESS;
        if ok { n } else { 0 }
    }

    /// The GPU of NVML index `index`, if there is one.
    pub fn device(&self, index: u32) -> Option<Device<'_>> {
        let mut handle: Handle = std::ptr::null_mut();
        // SAFETY: NVML is initialised and `handle` is a valid out-pointer.
        (unsafe { (self.handle)(index, &mut handle) } == NVML_SUCCESS).then_some(Device { nvml: self, handle })
    }
}

// Each reading below calls an NVML function with a handle NVML gave and
// out-pointers to live values of the types nvml.h declares; None when
// NVML reports a failure.
impl Device<'_> {
    /// The GPU's UUID (`GPU-…`).
    pub fn uuid(&self) -> Option<String> {
        let mut buf = [0u8; UUID_BUFFER];
        // SAFETY: see above; `buf` holds the length passed.
        let rc = unsafe { (self.nvml.uuid)(self.handle, buf.as_mut_ptr().cast(), UUID_BUFFER as c_uint) };
        if rc != NVML_SUCCESS {
            return None;
        }
        let uuid = CStr::from_bytes_until_nul(&buf).ok()?;
        uuid.to_str().ok().map(str::to_owned)
    }

    /// How busy the GPU's cores were over NVML's last sample period, in percent.
    pub fn util_percent(&self) -> Option<u32> {
        let mut util = Utilization::default();
        // SAFETY: see above.
        (unsafe { (self.nvml.utilization)(self.handle, &mut util) } == NVML_SUCCESS).then_some(util.gpu)
    }

    /// GPU memory in use, by any process, in bytes.
    pub fn mem_used_bytes(&self) -> Option<u64> {
        let mut mem = Memory::default();
        // SAFETY: see above.
        (unsafe { (self.nvml.memory)(self.handle, &mut mem) } == NVML_SUCCESS).then_some(mem.used)
    }

    /// The GPU die's temperature in degrees Celsius.
    pub fn temperature_c(&self) -> Option<u32> {
        let mut temp: c_uint = 0;
        // SAFETY: see above.
        (unsafe { (self.nvml.temperature)(self.handle, NVML_TEMPERATURE_GPU, &mut temp) } == NVML_SUCCESS)
            .then_some(temp)
    }

    /// The power the GPU draws, in milliwatts.
    pub fn power_mw(&self) -> Option<u32> {
        let mut mw: c_uint = 0;
        // SAFETY: see above.
        (unsafe { (self.nvml.power)(self.handle, &mut mw) } == NVML_SUCCESS).then_some(mw)
    }
}
