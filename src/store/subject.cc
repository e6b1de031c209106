#include "gophermq/store/subject.h"

namespace gophermq {

bool is_valid_subject(std::string_view subject) {
  if (subject.empty() || subject.front() == '.' || subject.back() == '.') return false;
  char previous = 0;
  for (char c : subject) {
    if (c == ' ' || c == '\t' || c == '\r' || c == '\n') return false;
    if (c == '.' && previous == '.') return false;  // an empty token between two dots
    previous = c;
  }
  return true;
}

}  // namespace gophermq
