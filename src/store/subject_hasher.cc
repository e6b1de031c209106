#include "gophermq/store/subject_hasher.h"

#include <sys/random.h>

#include <stdexcept>

namespace gophermq {

SubjectHasher::SubjectHasher() {
  std::uint64_t key[2];
  if (::getrandom(key, sizeof key, 0) != static_cast<ssize_t>(sizeof key)) {
    throw std::runtime_error("getrandom failed: no key for the subject table");
  }
  k0_ = key[0];
  k1_ = key[1];
}

}  // namespace gophermq
