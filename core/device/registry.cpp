#include <algorithm>
#include <cstdlib>

#include "core/device/device.h"
#include "core/util/error.h"

namespace heron {

DeviceRegistry& DeviceRegistry::get() {
  static DeviceRegistry reg;
  return reg;
}

int16_t DeviceRegistry::add(DeviceInterface* dev) {
  devices_.push_back(dev);
  return static_cast<int16_t>(devices_.size() - 1);
}

DeviceInterface* DeviceRegistry::at(int16_t type) const {
  if (type < 0 || static_cast<size_t>(type) >= devices_.size())
    throw Error(ErrorCode::NotFound, str_cat("unknown device type id ", type));
  return devices_[type];
}

int16_t DeviceRegistry::find(const std::string& name) const {
  for (size_t i = 0; i < devices_.size(); ++i)
    if (name == devices_[i]->name()) return static_cast<int16_t>(i);
  return -1;
}

int16_t DeviceRegistry::find_dlpack(int t) const {
  for (size_t i = 0; i < devices_.size(); ++i)
    if (devices_[i]->dlpack_type() == t) return static_cast<int16_t>(i);
  return -1;
}

Device DeviceRegistry::host() const {
  for (size_t i = 0; i < devices_.size(); ++i)
    if (devices_[i]->is_host()) return Device{static_cast<int16_t>(i), 0};
  throw Error(ErrorCode::Runtime, "no host device registered");
}

Device DeviceRegistry::parse(const std::string& spec) const {
  std::string name = spec;
  int index = 0;
  auto colon = spec.find(':');
  if (colon != std::string::npos) {
    name = spec.substr(0, colon);
    std::string idx = spec.substr(colon + 1);
    if (idx.empty() || idx.size() > 6 || !std::all_of(idx.begin(), idx.end(), ::isdigit))
      throw Error(ErrorCode::InvalidArgument, str_cat("invalid device string '", spec, "' (expected 'name' or 'name:index')"));
    index = std::atoi(idx.c_str());
  }
  int16_t t = find(name);
  if (t < 0) {
    std::string known;
    for (auto* d : devices_) { if (!known.empty()) known += ", "; known += d->name(); }
    throw Error(ErrorCode::NotFound, str_cat("unknown device '", name, "' (this build has: ", known, ")"));
  }
  int n = devices_[t]->count();
  if (index >= n)
    throw Error(ErrorCode::InvalidArgument,
                str_cat("device ", spec, " is not available: ", name, " has ", n, " device", n == 1 ? "" : "s", " here"));
  return Device{t, static_cast<int16_t>(index)};
}

std::string DeviceRegistry::to_string(Device d) const {
  auto* dev = at(d.type);
  if (dev->is_host()) return dev->name();
  return str_cat(dev->name(), ":", d.index);
}

std::string device_str(Device d) { return DeviceRegistry::get().to_string(d); }

}  // namespace heron
