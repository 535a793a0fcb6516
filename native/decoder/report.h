// The one JSON line earshot-decode prints on stdout (the format is in kUsage, options.cc).
#ifndef EARSHOT_DECODE_REPORT_H_
#define EARSHOT_DECODE_REPORT_H_

#include <string>

namespace earshot::decode {

// A JSON string literal of s; bytes outside ASCII become '?'.
std::string JsonString(const std::string& s);

// Writes json and a newline to stdout; gives up silently when nobody is listening.
void PrintLine(const std::string& json);

}  // namespace earshot::decode

#endif  // EARSHOT_DECODE_REPORT_H_
