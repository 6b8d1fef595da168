#include "common/record_batch.h"

#include <lz4frame.h>
#include <zstd.h>

#include <algorithm>
#include <limits>
#include <memory>

#include "common/crc32c.h"

namespace skiff {
namespace {

Result<std::string> ZstdDecompress(std::string_view data, int64_t max_output_bytes) {
  std::unique_ptr<ZSTD_DCtx, decltype(&ZSTD_freeDCtx)> ctx(ZSTD_createDCtx(), ZSTD_freeDCtx);
  std::string out;
  ZSTD_inBuffer in{data.data(), data.size(), 0};
  char chunk[64 * 1024];
  size_t ret = 1;
  while (in.pos < in.size || ret != 0) {
    ZSTD_outBuffer ob{chunk, sizeof(chunk), 0};
    size_t before = in.pos;
    ret = ZSTD_decompressStream(ctx.get(), &ob, &in);
    if (ZSTD_isError(ret)) {
      return InvalidArgumentError(std::string("zstd: ") + ZSTD_getErrorName(ret));
    }
    out.append(chunk, ob.pos);
    if (static_cast<int64_t>(out.size()) > max_output_bytes) {
      return InvalidArgumentError("decompressed batch exceeds " + std::to_string(max_output_bytes) +
                                  " bytes");
    }
    if (ob.pos == 0 && in.pos == before) {
      // No progress: the frame is truncated.
      return InvalidArgumentError("zstd: truncated frame");
    }
  }
  return out;
}

Result<std::string> Lz4Decompress(std::string_view data, int64_t max_output_bytes) {
  LZ4F_dctx* raw = nullptr;
  if (LZ4F_isError(LZ4F_createDecompressionContext(&raw, LZ4F_VERSION))) {
    return InternalError("lz4: cannot create context");
  }
  std::unique_ptr<LZ4F_dctx, decltype(&LZ4F_freeDecompressionContext)> ctx(
      raw, LZ4F_freeDecompressionContext);
  std::string out;
  const char* src = data.data();
  size_t remaining = data.size();
  char chunk[64 * 1024];
  size_t hint = 1;
  while (hint != 0) {
    size_t dst_size = sizeof(chunk);
    size_t src_size = remaining;
    hint = LZ4F_decompress(ctx.get(), chunk, &dst_size, src, &src_size, nullptr);
    if (LZ4F_isError(hint)) {
      return InvalidArgumentError(std::string("lz4: ") + LZ4F_getErrorName(hint));
    }
    out.append(chunk, dst_size);
    src += src_size;
    remaining -= src_size;
    if (static_cast<int64_t>(out.size()) > max_output_bytes) {
      return InvalidArgumentError("decompressed batch exceeds " + std::to_string(max_output_bytes) +
                                  " bytes");
    }
    if (hint != 0 && remaining == 0 && dst_size == 0) {
      return InvalidArgumentError("lz4: truncated frame");
    }
  }
  if (remaining != 0) return InvalidArgumentError("lz4: trailing bytes after frame");
  return out;
}

}  // namespace

Result<std::string> Compress(v1::Compression compression, std::string_view data) {
  switch (compression) {
    case v1::COMPRESSION_NONE:
      return std::string(data);
    case v1::COMPRESSION_ZSTD: {
      std::string out(ZSTD_compressBound(data.size()), '\0');
      size_t n = ZSTD_compress(out.data(), out.size(), data.data(), data.size(), 1);
      if (ZSTD_isError(n)) return InternalError(std::string("zstd: ") + ZSTD_getErrorName(n));
      out.resize(n);
      return out;
    }
    case v1::COMPRESSION_LZ4: {
      std::string out(LZ4F_compressFrameBound(data.size(), nullptr), '\0');
      size_t n = LZ4F_compressFrame(out.data(), out.size(), data.data(), data.size(), nullptr);
      if (LZ4F_isError(n)) return InternalError(std::string("lz4: ") + LZ4F_getErrorName(n));
      out.resize(n);
      return out;
    }
    default:
      return InvalidArgumentError("unknown compression " + std::to_string(compression));
  }
}

Result<std::string> Decompress(v1::Compression compression, std::string_view data,
                               int64_t max_output_bytes) {
  switch (compression) {
    case v1::COMPRESSION_NONE:
      return std::string(data);
    case v1::COMPRESSION_ZSTD:
      return ZstdDecompress(data, max_output_bytes);
    case v1::COMPRESSION_LZ4:
      return Lz4Decompress(data, max_output_bytes);
    default:
      return InvalidArgumentError("unknown compression " + std::to_string(compression));
  }
}

Result<v1::RecordBatch> BuildRecordBatch(const std::vector<v1::Record>& records,
                                         v1::Compression compression) {
  if (records.empty()) return InvalidArgumentError("a batch needs at least one record");
  if (records.size() > static_cast<size_t>(std::numeric_limits<int32_t>::max())) {
    return InvalidArgumentError("too many records for one batch");
  }
  v1::RecordSet set;
  int64_t first_ts = std::numeric_limits<int64_t>::max(), max_ts = 0;
  for (const v1::Record& r : records) {
    *set.add_records() = r;
    if (r.timestamp_ms() != 0) {
      first_ts = std::min(first_ts, r.timestamp_ms());
      max_ts = std::max(max_ts, r.timestamp_ms());
    }
  }
  SKIFF_ASSIGN_OR_RETURN(std::string payload, Compress(compression, set.SerializeAsString()));
  v1::RecordBatch batch;
  batch.set_record_count(static_cast<int32_t>(records.size()));
  batch.set_producer_id(-1);
  batch.set_first_timestamp_ms(max_ts == 0 ? 0 : first_ts);
  batch.set_max_timestamp_ms(max_ts);
  batch.set_compression(compression);
  batch.set_crc32c(Crc32c(payload));
  *batch.mutable_records() = std::move(payload);
  return batch;
}

Result<v1::RecordSet> DecodeRecordBatch(const v1::RecordBatch& batch, const BatchLimits& limits) {
  if (batch.has_crc32c()) {
    uint32_t actual = Crc32c(batch.records());
    if (actual != batch.crc32c()) {
      return CorruptionError("record batch CRC32C mismatch: header says " +
                             std::to_string(batch.crc32c()) + ", payload has " +
                             std::to_string(actual));
    }
  }
  if (batch.record_count() < 1) {
    return InvalidArgumentError("record_count must be >= 1, got " +
                                std::to_string(batch.record_count()));
  }
  SKIFF_ASSIGN_OR_RETURN(std::string raw, Decompress(batch.compression(), batch.records(),
                                                     limits.max_decompressed_bytes));
  v1::RecordSet set;
  if (!set.ParseFromString(raw)) {
    return InvalidArgumentError("records do not parse as a skiff.v1.RecordSet");
  }
  if (set.records_size() != batch.record_count()) {
    return InvalidArgumentError("record_count is " + std::to_string(batch.record_count()) +
                                " but the batch holds " + std::to_string(set.records_size()) +
                                " records");
  }
  for (const v1::Record& r : set.records()) {
    for (const v1::RecordHeader& h : r.headers()) {
      if (h.name().empty()) return InvalidArgumentError("a record header has an empty name");
    }
  }
  return set;
}

Status ValidateRecordBatchForAppend(v1::RecordBatch& batch, const BatchLimits& limits) {
  const int64_t size = static_cast<int64_t>(batch.ByteSizeLong());
  if (size > limits.max_batch_bytes) {
    return OutOfRangeError("batch of " + std::to_string(size) + " bytes exceeds the limit of " +
                           std::to_string(limits.max_batch_bytes));
  }
  SKIFF_RETURN_IF_ERROR(DecodeRecordBatch(batch, limits).status());
  if (!batch.has_crc32c()) batch.set_crc32c(Crc32c(batch.records()));
  return Status::Ok();
}

}  // namespace skiff
