// libFuzzer target: request bodies through the JSON decoder alone.
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <vector>

#include "gophermq/byte_buffer.h"
#include "gophermq/api/request_decoder.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  static gophermq::RequestDecoder decoder;
  // The decoder needs readable padding past the body, as the receive
  // buffers give it; exactly that much, so ASan sees any read beyond.
  std::vector<char> body(size + gophermq::ByteBuffer::kPadding);
  if (size != 0) std::memcpy(body.data(), data, size);
  gophermq::DecodedRequest request;
  if (decoder.decode(body.data(), size, body.size(), request)) {
    // What it decoded must be readable, whatever the input was.
    volatile std::size_t total = request.subject.size() + request.data.size() + request.id.size();
    for (char c : request.subject) total = total + static_cast<unsigned char>(c);
    for (char c : request.data) total = total + static_cast<unsigned char>(c);
    for (char c : request.id) total = total + static_cast<unsigned char>(c);
  }
  return 0;
}
