// CRC32C (Castagnoli), as used by iSCSI/ext4: hardware (SSE4.2) when the CPU
// has it, slicing-by-8 otherwise. Hand-written: Debian 12 packages no CRC32C
// library for C++, and Boost.CRC is ~10x slower (see NOTES.md).
#pragma once

#include <cstddef>
#include <cstdint>
#include <string_view>

namespace mq {

// Extends `crc` (the CRC of the bytes before) over `data`. crc32c(0, "123456789") == 0xE3069283.
uint32_t crc32c_extend(uint32_t crc, const void* data, size_t n);
inline uint32_t crc32c(const void* data, size_t n) { return crc32c_extend(0, data, n); }
inline uint32_t crc32c(std::string_view s) { return crc32c(s.data(), s.size()); }

}  // namespace mq
