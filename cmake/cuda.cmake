# The cuda device: built whenever nvcc is found (on PATH, via CMAKE_CUDA_COMPILER, or in the
# Python environment's nvidia-cuda-nvcc wheel). The CUDA runtime is linked statically and cuBLAS
# is loaded at run time, so the library still loads on machines without a GPU.
option(HERON_CUDA "Build the cuda device when nvcc is found" ON)
if(NOT HERON_CUDA)
  return()
endif()

if(NOT CMAKE_CUDA_COMPILER)
  find_program(HERON_NVCC nvcc)
  if(NOT HERON_NVCC AND Python_EXECUTABLE)
    execute_process(COMMAND "${Python_EXECUTABLE}" -c
      "import nvidia, os; print(os.path.join(list(nvidia.__path__)[0], 'cu13', 'bin', 'nvcc'))"
      OUTPUT_VARIABLE _nvcc OUTPUT_STRIP_TRAILING_WHITESPACE ERROR_QUIET)
    if(_nvcc AND EXISTS "${_nvcc}")
      set(HERON_NVCC "${_nvcc}")
    endif()
  endif()
  if(NOT HERON_NVCC)
    message(STATUS "heron: nvcc not found, the cuda device is not built")
    return()
  endif()
  set(CMAKE_CUDA_COMPILER "${HERON_NVCC}")
endif()

get_filename_component(_cuda_bin "${CMAKE_CUDA_COMPILER}" DIRECTORY)
get_filename_component(HERON_CUDA_ROOT "${_cuda_bin}" DIRECTORY)
if(NOT CMAKE_CUDA_ARCHITECTURES)
  set(CMAKE_CUDA_ARCHITECTURES "80-real;90")
endif()
set(CMAKE_CUDA_STANDARD 17)
set(CMAKE_CUDA_STANDARD_REQUIRED ON)
enable_language(CUDA)
message(STATUS "heron: building the cuda device with ${CMAKE_CUDA_COMPILER} (${CMAKE_CUDA_COMPILER_VERSION})")

file(GLOB HERON_CUDA_SOURCES CONFIGURE_DEPENDS
  ${CMAKE_CURRENT_SOURCE_DIR}/core/device/cuda/*.cu
  ${CMAKE_CURRENT_SOURCE_DIR}/core/ops/kernels/cuda/*.cu)
target_sources(heron_core PRIVATE ${HERON_CUDA_SOURCES})
set_target_properties(heron_core PROPERTIES CUDA_ARCHITECTURES "${CMAKE_CUDA_ARCHITECTURES}")
find_library(HERON_CUDART_STATIC NAMES cudart_static PATHS "${HERON_CUDA_ROOT}/lib" "${HERON_CUDA_ROOT}/lib64" NO_DEFAULT_PATH)
if(NOT HERON_CUDART_STATIC)
  find_library(HERON_CUDART_STATIC NAMES cudart_static)
endif()
if(NOT HERON_CUDART_STATIC)
  message(FATAL_ERROR "heron: nvcc found but libcudart_static.a not (pip install nvidia-cuda-runtime)")
endif()
target_include_directories(heron_core PUBLIC "${HERON_CUDA_ROOT}/include")
target_link_libraries(heron_core PUBLIC ${HERON_CUDART_STATIC} ${CMAKE_DL_LIBS} rt)
set_source_files_properties(${HERON_CUDA_SOURCES} PROPERTIES COMPILE_OPTIONS "-Xcompiler=-fvisibility=hidden;--expt-relaxed-constexpr")
set(HERON_HAS_CUDA ON)
