// libFuzzer target: request bodies through the JSON decoder alone, read as
// each endpoint's body.
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <string_view>
#include <vector>

#include "gophermq/api/request_decoder.h"
#include "gophermq/byte_buffer.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  static gophermq::RequestDecoder decoder;
  // The decoder needs readable padding past the body, as the receive
  // buffers give it; exactly that much, so ASan sees any read beyond.
  std::vector<char> body(size + gophermq::ByteBuffer::kPadding);
  if (size != 0) std::memcpy(body.data(), data, size);
  using gophermq::Endpoint;
  for (const Endpoint endpoint : {Endpoint::publish, Endpoint::publish_batch, Endpoint::subscribe,
                                  Endpoint::fetch, Endpoint::ack}) {
    const gophermq::DecodedRequest* decoded =
        decoder.decode(body.data(), size, body.size(), gophermq::RequestFields::of(endpoint));
    if (decoded == nullptr) continue;
    const gophermq::DecodedRequest& request = *decoded;
    // What it decoded must be readable, whatever the input was.
    volatile std::size_t total = 0;
    auto read = [&total](std::string_view text) {
      for (char c : text) total = total + static_cast<unsigned char>(c);
    };
    read(request.subject);
    read(request.data);
    read(request.id);
    for (std::string_view datum : request.batch_data) read(datum);
    for (const gophermq::BatchEntry& entry : request.batch_messages) {
      read(entry.subject);
      read(entry.data);
    }
  }
  return 0;
}
