//===- ParserGuards.cpp - input upstream's parser crashes on --------------===//

#include "posenc/Runtime/ParserGuards.h"

#include "llvm/ADT/StringExtras.h"
#include "llvm/ADT/Twine.h"

using namespace llvm;

namespace {
/// Whether `s` starts with `[int (, int)*]` or `[]` (spaces allowed).
bool startsWithIntegerList(StringRef s) {
  s = s.ltrim();
  if (!s.consume_front("["))
    return false;
  s = s.ltrim();
  if (s.starts_with("]"))
    return true;
  while (true) {
    s = s.ltrim();
    s.consume_front("-");
    size_t digits = 0;
    while (digits < s.size() && isDigit(s[digits]))
      ++digits;
    if (digits == 0)
      return false;
    s = s.drop_front(digits).ltrim();
    if (s.consume_front("]"))
      return true;
    if (!s.consume_front(","))
      return false;
  }
}
} // namespace

std::optional<std::string> mlir::posenc::upstreamParserCrash(StringRef text) {
  int64_t lineNo = 0;
  for (StringRef rest = text; !rest.empty();) {
    auto [line, next] = rest.split('\n');
    rest = next;
    ++lineNo;
    if (line.ltrim().starts_with("//"))
      continue;
    for (StringRef keyword : {"permutation", "dimensions"}) {
      for (size_t at = line.find(keyword); at != StringRef::npos;
           at = line.find(keyword, at + 1)) {
        // A whole word followed by '='.
        if (at > 0 && (isAlnum(line[at - 1]) || line[at - 1] == '_'))
          continue;
        StringRef after = line.drop_front(at + keyword.size()).ltrim();
        if (!after.consume_front("=") || after.starts_with("="))
          continue;
        after = after.ltrim();
        if (after.starts_with("array<") || startsWithIntegerList(after))
          continue;
        return ("line " + Twine(lineNo) + ": `" + keyword +
                " =` must be followed by a list of integers such as "
                "[0, 2, 1, 3] (upstream's linalg parser crashes on other "
                "text there)")
            .str();
      }
    }
  }
  return std::nullopt;
}
