// The few pieces the analyses' SVG plots share: text escaping, the document
// head, and printf into the document.
#pragma once

#include <cstdarg>
#include <cstdio>
#include <string>

namespace neuronlens::svg {

inline std::string escape(const std::string& s) {
  std::string o;
  for (char c : s) {
    if (c == '<') o += "&lt;";
    else if (c == '>') o += "&gt;";
    else if (c == '&') o += "&amp;";
    else if (c == '"') o += "&quot;";
    else o += c;
  }
  return o;
}

// Appends printf-formatted text to `out`.
[[gnu::format(printf, 2, 3)]] inline void append(std::string& out, const char* format, ...) {
  char buf[1024];
  va_list args;
  va_start(args, format);
  const int n = std::vsnprintf(buf, sizeof buf, format, args);
  va_end(args);
  if (n > 0) out.append(buf, static_cast<size_t>(n) < sizeof buf ? static_cast<size_t>(n) : sizeof buf - 1);
}

// <svg ...> on a white background, and the title at (left, 24).
inline std::string open(double width, double height, double left, const std::string& title) {
  std::string out;
  append(out,
         "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"%.0f\" height=\"%.0f\" font-family=\"sans-serif\" "
         "font-size=\"12\">\n<rect width=\"100%%\" height=\"100%%\" fill=\"white\"/>\n",
         width, height);
  append(out, "<text x=\"%.0f\" y=\"24\" font-size=\"15\">%s</text>\n", left, escape(title).c_str());
  return out;
}

}  // namespace neuronlens::svg
