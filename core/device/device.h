// The device registry. A device registers by name with an allocator and copy routines; kernels
// register per (op, device, dtype) in the dispatcher. Nothing outside core/device/<name>/ and
// core/ops/kernels/<name>/ names a concrete device.
#pragma once
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

namespace heron {

// A device instance: type is the registry index of the device kind, index the ordinal (cuda:1).
struct Device {
  int16_t type = 0;
  int16_t index = 0;
  bool operator==(const Device& o) const { return type == o.type && index == o.index; }
  bool operator!=(const Device& o) const { return !(*this == o); }
};

class DeviceInterface {
 public:
  virtual ~DeviceInterface() = default;
  virtual const char* name() const = 0;
  // True for the device whose memory the host can read directly (exactly one: the host device).
  virtual bool is_host() const { return false; }
  virtual int count() const = 0;
  virtual void* allocate(size_t nbytes, int index) = 0;  // throws heron::Error(OutOfMemory)
  virtual void deallocate(void* p, size_t nbytes, int index) = 0;
  virtual void copy_from_host(void* dst, const void* src, size_t n, int index) = 0;
  virtual void copy_to_host(void* dst, const void* src, size_t n, int index) = 0;
  virtual void copy_on_device(void* dst, const void* src, size_t n, int index) = 0;
  virtual void synchronize(int /*index*/) {}
  // DLPack device type code (kDLCPU = 1, kDLCUDA = 2, ...).
  virtual int dlpack_type() const = 0;
  // Whether pointer p can be wrapped as memory of this device (used to validate external memory).
  virtual bool owns_pointer(const void* /*p*/, int /*index*/) const { return true; }
};

class DeviceRegistry {
 public:
  static DeviceRegistry& get();
  // Registers a device kind; returns its type id. Called from static registrars.
  int16_t add(DeviceInterface* dev);
  DeviceInterface* at(int16_t type) const;
  int16_t find(const std::string& name) const;  // -1 when unknown
  int16_t find_dlpack(int dlpack_type) const;   // -1 when unknown
  size_t size() const { return devices_.size(); }
  Device host() const;  // the host device (index 0)
  // Parses "cpu", "cuda", "cuda:1"; throws NotFound/InvalidArgument.
  Device parse(const std::string& spec) const;
  std::string to_string(Device d) const;
 private:
  std::vector<DeviceInterface*> devices_;
};

inline DeviceInterface& device_impl(Device d) { return *DeviceRegistry::get().at(d.type); }
std::string device_str(Device d);

struct DeviceRegistrar {
  explicit DeviceRegistrar(DeviceInterface* dev) { DeviceRegistry::get().add(dev); }
};

}  // namespace heron
