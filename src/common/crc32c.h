// CRC32C (Castagnoli), the checksum on every record batch payload: computed by the producer
// (or the leader), verified on every read from disk and on every receive from a peer.
// Hardware-accelerated through ISA-L. Standard parameters: Crc32c("123456789") == 0xE3069283.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string_view>

namespace skiff {

uint32_t Crc32c(const void* data, size_t size);
inline uint32_t Crc32c(std::string_view data) { return Crc32c(data.data(), data.size()); }

// Continue a checksum over more bytes: Crc32cExtend(Crc32c(a), b) == Crc32c(a + b).
uint32_t Crc32cExtend(uint32_t crc, const void* data, size_t size);

}  // namespace skiff
