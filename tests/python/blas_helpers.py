"""Which kernels the OpenBLAS under libheron runs (tests whose bitwise claims depend on them)."""
import ctypes
import os

# OpenBLAS's AVX-512 kernel sets: a product's elements round the same however OpenBLAS splits it
# over threads (measured; with its Haswell kernels they do not).
AVX512_CORES = {"skylakex", "cooperlake", "sapphirerapids"}


def openblas_core():
    """OpenBLAS's kernel set (e.g. 'SkylakeX', 'Haswell'); dlopen by soname returns the library
    libheron already loaded. None when it cannot be asked."""
    try:
        lib = ctypes.CDLL("libopenblas.so.0")
        lib.openblas_get_corename.restype = ctypes.c_char_p
        return lib.openblas_get_corename().decode()
    except (OSError, AttributeError):
        return None


def openblas_threads_change_bits():
    core = openblas_core()
    return core is not None and core.lower() not in AVX512_CORES


def why_openblas_threads_change_bits():
    return (f"OpenBLAS runs its {openblas_core()} kernels here (OPENBLAS_CORETYPE={os.environ.get('OPENBLAS_CORETYPE')}), "
            "whose products round differently when OpenBLAS splits them over another number of threads (measured with "
            "Haswell: up to 2675 of the demo ConvNet's gradient elements differ between 1 and 3 threads); `make test` runs "
            "these tests again with OPENBLAS_CORETYPE=SKYLAKEX on AVX-512 CPUs (docs/design/decisions.md)")
