#include "common/crc32c.h"

#include <isa-l/crc.h>

namespace skiff {

// ISA-L's crc32_iscsi takes and returns the raw (non-inverted) register; the standard CRC32C
// inverts on the way in and on the way out.
uint32_t Crc32cExtend(uint32_t crc, const void* data, size_t size) {
  return crc32_iscsi(static_cast<unsigned char*>(const_cast<void*>(data)), static_cast<int>(size),
                     crc ^ 0xFFFFFFFFu) ^
         0xFFFFFFFFu;
}

uint32_t Crc32c(const void* data, size_t size) { return Crc32cExtend(0, data, size); }

}  // namespace skiff
