#pragma once
// Every error ladon reports is a ladon::Error: a message that says what went
// wrong, where (file, field, node) and what was expected. The tool prints it as
// one line and exits non-zero.
#include <stdexcept>
#include <string>

namespace ladon {

class Error : public std::runtime_error {
public:
    using std::runtime_error::runtime_error;
};

}  // namespace ladon
