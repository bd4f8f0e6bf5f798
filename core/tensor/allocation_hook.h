// A per-thread hook that Storage(nbytes, device) asks first. The runtime session sets one around
// each step to serve the step's planned outputs from its arena (core/runtime/session.cpp). Only
// the thread that set it is affected: threads of the pool running inside a kernel are not. The
// hook must not allocate storages itself. (A header of its own so that tensor.h stays unchanged.)
#pragma once
#include <cstddef>

#include "core/device/device.h"

namespace heron {

class Storage;

class AllocationHook {
 public:
  virtual ~AllocationHook() = default;
  // Memory for `storage` (being constructed, nbytes on d), or nullptr to allocate normally. When
  // memory is returned, the storage calls *deleter(*ctx) when it dies (the deleter may stay null).
  virtual void* allocate(const Storage* storage, size_t nbytes, Device d, void (**deleter)(void*), void** ctx) = 0;
  // Called when a storage (any, however it was allocated) is destroyed on this thread.
  virtual void destroyed(const Storage* storage) { (void)storage; }
};

// Sets this thread's hook (nullptr: none) and returns the previous one.
AllocationHook* set_allocation_hook(AllocationHook* hook);

}  // namespace heron
