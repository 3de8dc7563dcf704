// Batch layout shared with JavaScript: one byte array of N equal slots plus a Uint32Array of
// N x kMetaWords words (length, offset, flags, VLAN, ifindex, ...). One N-API call per batch.
#pragma once

#include <napi.h>

#include <cstddef>
#include <cstdint>

namespace weir {

// KEEP IN SYNC with src/io/batch.ts (META_* and WEIR_F_* constants).
// Every meta word is a uint32 in host byte order; packet bytes are as on the wire.
constexpr uint32_t kMetaWords = 8;
enum MetaWord : uint32_t {
  kMetaLen = 0,      // bytes of packet in the slot, starting at kMetaOff
  kMetaOff = 1,      // byte offset of the packet from the start of its slot (headroom)
  kMetaWireLen = 2,  // length on the wire; > kMetaLen when the slot or ring truncated it
  kMetaFlags = 3,    // TP_STATUS_* bits from the kernel (low 16) | WEIR_F_* bits (high)
  kMetaVlan = 4,     // VLAN TCI (low 16) | VLAN TPID (high 16), valid with TP_STATUS_VLAN_VALID
  kMetaIfindex = 5,  // receiving interface index (AF_PACKET, raw IP receive) or 0
  kMetaProto = 6,    // ethertype, host order (low 16) | sll_pkttype (bits 16..23)
  kMetaAux = 7,      // rx: kernel rxhash (AF_PACKET); tx: errno of a slot that failed
};

// Flags weir adds beside the kernel's TP_STATUS_* bits (which stay in the low 16 bits).
constexpr uint32_t WEIR_F_TRUNCATED = 1u << 31;  // slot smaller than the packet: bytes cut
constexpr uint32_t WEIR_F_TX_ERROR = 1u << 30;   // send refused this slot; errno in kMetaAux
constexpr uint32_t WEIR_F_SYNTH_HDR = 1u << 29;  // IPv6 raw rx: the IP header was rebuilt by the addon

// The kernel defines this one but the uapi header does not export it.
#ifndef TP_STATUS_GSO_TCP
#define TP_STATUS_GSO_TCP (1 << 8)
#endif

struct BatchView {
  uint8_t* data = nullptr;
  size_t data_len = 0;
  uint32_t* meta = nullptr;
  uint32_t slots = 0;
  uint32_t slot_size = 0;
  uint8_t* slot(uint32_t i) const { return data + static_cast<size_t>(i) * slot_size; }
  uint32_t* meta_of(uint32_t i) const { return meta + static_cast<size_t>(i) * kMetaWords; }
};

// Reads (data: Uint8Array, meta: Uint32Array) from info[first], info[first + 1].
// Returns false after throwing a TypeError when the arguments don't form a batch.
bool GetBatch(const Napi::CallbackInfo& info, size_t first, BatchView* out);

// send(data, meta, count?): the batch and how many slots to send (all when omitted); throws
// and returns false on bad arguments or a count past the batch's slots.
bool GetSendArgs(const Napi::CallbackInfo& info, BatchView* b, uint32_t* count);

// recv(data, meta, headroom = 0, timeoutMs = 0): the batch, the headroom and the poll timeout;
// throws and returns false on bad arguments.
bool GetRecvArgs(const Napi::CallbackInfo& info, BatchView* b, int64_t* headroom, int64_t* timeout);

// Reads an optional integer argument; throws TypeError and returns false when not a number.
bool GetInt(const Napi::CallbackInfo& info, size_t idx, int64_t dflt, int64_t lo, int64_t hi,
            const char* name, int64_t* out);

}  // namespace weir
