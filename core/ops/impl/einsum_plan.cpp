// einsum: parser, shape binding, contraction-path optimizer and plan cache (see einsum_plan.h and
// docs/design/einsum.md).
#include "core/ops/impl/einsum_plan.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <mutex>
#include <unordered_map>

#include "core/util/error.h"

namespace heron {
namespace einsum {
namespace {

constexpr const char* kOp = "einsum";
constexpr size_t kMaxEquation = 1 << 16;

[[noreturn]] void fail(const std::string& eq, size_t pos, const std::string& what) {
  throw Error(ErrorCode::InvalidArgument, caret_message(eq, pos, what), kOp);
}

char label_char(int l) { return l < 26 ? static_cast<char>('A' + l) : static_cast<char>('a' + (l - 26)); }

std::string shown_char(char c) {
  unsigned char u = static_cast<unsigned char>(c);
  if (u >= 0x20 && u < 0x7f) return str_cat("'", c, "'");
  static const char* hex = "0123456789abcdef";
  return str_cat("byte 0x", hex[u >> 4], hex[u & 15]);
}

// A set of label ids (< kMaxLabels = 128) as two words: the optimizer's inner loops are a few
// word operations, and products over a set visit only its members.
struct LabelSet {
  uint64_t w[2] = {0, 0};
  void set(size_t l) { w[l >> 6] |= uint64_t{1} << (l & 63); }
  bool test(size_t l) const { return (w[l >> 6] >> (l & 63)) & 1; }
  bool any() const { return (w[0] | w[1]) != 0; }
  int count() const { return __builtin_popcountll(w[0]) + __builtin_popcountll(w[1]); }
  LabelSet operator|(const LabelSet& o) const { return LabelSet{{w[0] | o.w[0], w[1] | o.w[1]}}; }
  LabelSet operator&(const LabelSet& o) const { return LabelSet{{w[0] & o.w[0], w[1] & o.w[1]}}; }
  LabelSet operator^(const LabelSet& o) const { return LabelSet{{w[0] ^ o.w[0], w[1] ^ o.w[1]}}; }
  LabelSet operator~() const { return LabelSet{{~w[0], ~w[1]}}; }
  LabelSet& operator|=(const LabelSet& o) { w[0] |= o.w[0], w[1] |= o.w[1]; return *this; }
  template <typename F>
  void each(F f) const {
    for (int k = 0; k < 2; ++k)
      for (uint64_t b = w[k]; b; b &= b - 1) f(static_cast<size_t>(k * 64 + __builtin_ctzll(b)));
  }
};
static_assert(kMaxLabels == 128, "LabelSet holds 128 labels");

LabelSet to_set(const std::vector<int>& ls) {
  LabelSet s;
  for (int l : ls) s.set(static_cast<size_t>(l));
  return s;
}

std::vector<int> to_vec(const LabelSet& s, int n_labels) {
  std::vector<int> v;
  for (int l = 0; l < n_labels; ++l)
    if (s.test(static_cast<size_t>(l))) v.push_back(l);
  return v;
}

// Product of the sizes of the labels in s (as a double: counts can exceed int64).
double set_size(const LabelSet& s, const std::vector<int64_t>& size) {
  double p = 1;
  s.each([&](size_t l) { p *= static_cast<double>(size[l]); });
  return p;
}

}  // namespace

std::string caret_message(const std::string& equation, size_t pos, const std::string& what) {
  // Show at most ~70 characters around pos; non-printable bytes as '?' so the caret stays aligned.
  size_t start = 0, end = equation.size();
  if (end > 72) {
    start = pos > 36 ? pos - 36 : 0;
    end = std::min(equation.size(), start + 72);
  }
  std::string shown = start > 0 ? "..." : "";
  size_t pad = shown.size();
  for (size_t i = start; i < end; ++i) {
    unsigned char u = static_cast<unsigned char>(equation[i]);
    shown += (u >= 0x20 && u < 0x7f) ? equation[i] : '?';
  }
  if (end < equation.size()) shown += "...";
  size_t col = pad + (std::min(pos, equation.size()) - start);
  return str_cat(kOp, ": ", what, "\n    ", shown, "\n    ", std::string(col, ' '), "^");
}

// ------------------------------------------------------------------ parser
Equation parse(const std::string& text) {
  Equation eq;
  eq.text = text;
  if (text.size() > kMaxEquation)
    throw Error(ErrorCode::InvalidArgument,
                str_cat(kOp, ": the equation is ", text.size(), " characters long (at most ", kMaxEquation, ")"), kOp);
  Term cur;
  bool in_output = false;
  size_t i = 0;
  while (i < text.size()) {
    char c = text[i];
    if (c == ' ' || c == '\t' || c == '\n' || c == '\r') {
      ++i;
    } else if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z')) {
      cur.items.push_back(Item{c >= 'a' ? 26 + (c - 'a') : c - 'A', i});
      ++i;
    } else if (c == '.') {
      if (i + 2 >= text.size() || text[i + 1] != '.' || text[i + 2] != '.')
        fail(text, i, "'.' must be part of an ellipsis '...'");
      if (cur.has_ellipsis()) fail(text, i, "more than one ellipsis '...' in one term");
      cur.items.push_back(Item{-1, i});
      i += 3;
    } else if (c == ',') {
      if (in_output) fail(text, i, "',' after '->': the output is a single term");
      eq.inputs.push_back(std::move(cur));
      cur = Term{};
      cur.pos = i + 1;
      ++i;
    } else if (c == '-') {
      if (i + 1 >= text.size() || text[i + 1] != '>') fail(text, i, "'-' must be part of the arrow '->'");
      if (in_output) fail(text, i, "a second '->'");
      eq.inputs.push_back(std::move(cur));
      cur = Term{};
      cur.pos = i + 2;
      in_output = true;
      i += 2;
    } else if (c == '>') {
      fail(text, i, "'>' without a '-' before it (the arrow is '->')");
    } else {
      fail(text, i, str_cat("invalid character ", shown_char(c), " (labels are the 52 letters a-z and A-Z; also allowed: ',', '->', '...', spaces)"));
    }
  }
  if (in_output) {
    eq.explicit_output = true;
    eq.output = std::move(cur);
  } else {
    eq.inputs.push_back(std::move(cur));
  }
  // Output checks that need no shapes.
  if (eq.explicit_output) {
    std::vector<bool> seen(kNumLetters, false), in_inputs(kNumLetters, false);
    for (const Term& t : eq.inputs)
      for (const Item& it : t.items)
        if (it.label >= 0) in_inputs[it.label] = true;
    for (const Item& it : eq.output.items) {
      if (it.label < 0) continue;
      if (seen[it.label]) fail(text, it.pos, str_cat("label '", label_char(it.label), "' appears more than once in the output"));
      seen[it.label] = true;
      if (!in_inputs[it.label]) fail(text, it.pos, str_cat("output label '", label_char(it.label), "' does not appear in any input"));
    }
  }
  return eq;
}

// ------------------------------------------------------------------ binding to shapes
Bound bind(const Equation& eq, const std::vector<Dims>& shapes) {
  const std::string& text = eq.text;
  const size_t n = shapes.size();
  if (n == 0) throw Error(ErrorCode::InvalidArgument, str_cat(kOp, ": at least one operand is required"), kOp);
  if (eq.inputs.size() != n) {
    size_t pos = eq.inputs.size() > n ? eq.inputs[n].pos : (eq.explicit_output ? eq.output.pos - 2 : text.size());
    fail(text, pos, str_cat("the equation has ", eq.inputs.size(), " input term", eq.inputs.size() == 1 ? "" : "s", " but ", n,
                            " operand", n == 1 ? " was" : "s were", " given"));
  }
  // Broadcast (ellipsis) dims per operand, and their maximum.
  std::vector<int64_t> n_ell(n, 0);
  int64_t E = 0;
  for (size_t k = 0; k < n; ++k) {
    const Term& t = eq.inputs[k];
    int64_t letters = 0;
    for (const Item& it : t.items) letters += it.label >= 0;
    const int64_t rank = static_cast<int64_t>(shapes[k].size());
    if (t.has_ellipsis()) {
      if (rank < letters)
        fail(text, t.pos, str_cat("operand ", k, " has ", rank, " dim", rank == 1 ? "" : "s", " (shape ", shapes[k].str(),
                                  ") but its term names ", letters, " (plus '...')"));
      n_ell[k] = rank - letters;
      E = std::max(E, n_ell[k]);
    } else if (rank != letters) {
      fail(text, t.pos, str_cat("operand ", k, " has ", rank, " dim", rank == 1 ? "" : "s", " (shape ", shapes[k].str(),
                                ") but its term names ", letters, rank > letters ? " (use '...' for the others)" : ""));
    }
  }
  if (kNumLetters + E > kMaxLabels)
    throw Error(ErrorCode::InvalidArgument,
                str_cat(kOp, ": too many broadcast ('...') dims: ", E, " (at most ", kMaxLabels - kNumLetters, ")"), kOp);
  Bound b;
  b.n_labels = static_cast<int>(kNumLetters + E);
  b.size.assign(static_cast<size_t>(b.n_labels), -1);
  std::vector<int> count(static_cast<size_t>(b.n_labels), 0);      // occurrences over all inputs
  b.labels.resize(n);
  for (size_t k = 0; k < n; ++k) {
    const Term& t = eq.inputs[k];
    std::vector<int>& ls = b.labels[k];
    std::vector<size_t> pos;
    for (const Item& it : t.items) {
      if (it.label >= 0) {
        ls.push_back(it.label);
        pos.push_back(it.pos);
      } else {
        for (int64_t j = 0; j < n_ell[k]; ++j) {
          ls.push_back(static_cast<int>(kNumLetters + (E - n_ell[k]) + j));
          pos.push_back(it.pos);
        }
      }
    }
    // Repeated labels within the operand must agree exactly (a diagonal).
    for (size_t d = 0; d < ls.size(); ++d) {
      for (size_t d2 = 0; d2 < d; ++d2) {
        if (ls[d2] == ls[d] && shapes[k][d2] != shapes[k][d])
          fail(text, pos[d], str_cat("label '", label_char(ls[d]), "' is repeated in operand ", k, " for dims of different sizes (",
                                     shapes[k][d2], " and ", shapes[k][d], "; shape ", shapes[k].str(), ")"));
      }
    }
    for (size_t d = 0; d < ls.size(); ++d) {
      const int l = ls[d];
      const int64_t s = shapes[k][d];
      int64_t& cur = b.size[static_cast<size_t>(l)];
      ++count[static_cast<size_t>(l)];
      if (cur < 0 || cur == 1) {
        cur = cur < 0 ? s : (s == 1 ? cur : s);
      } else if (s != cur && s != 1) {
        if (l < kNumLetters)
          fail(text, pos[d], str_cat("label '", label_char(l), "' has size ", s, " in operand ", k, " (shape ", shapes[k].str(),
                                     ") but size ", cur, " elsewhere; sizes must match or be 1"));
        fail(text, pos[d], str_cat("the '...' dims of operand ", k, " (shape ", shapes[k].str(),
                                   ") cannot be broadcast with the others: size ", s, " against ", cur));
      }
    }
  }
  for (int64_t& s : b.size)
    if (s < 0) s = 0;
  // Output.
  if (eq.explicit_output) {
    bool out_ell = eq.output.has_ellipsis();
    for (const Item& it : eq.output.items) {
      if (it.label >= 0) {
        b.out.push_back(it.label);
      } else {
        for (int64_t j = 0; j < E; ++j) b.out.push_back(static_cast<int>(kNumLetters + j));
      }
    }
    if (!out_ell && E > 0)
      fail(text, eq.output.pos, str_cat("the operands have ", E, " broadcast ('...') dim", E == 1 ? "" : "s",
                                        " but the output has no '...' to hold them"));
  } else {
    for (int64_t j = 0; j < E; ++j) b.out.push_back(static_cast<int>(kNumLetters + j));
    for (int l = 0; l < kNumLetters; ++l)
      if (count[static_cast<size_t>(l)] == 1) b.out.push_back(l);
  }
  return b;
}

std::vector<std::vector<int>> effective_labels(const Bound& b, const std::vector<Dims>& shapes) {
  std::vector<std::vector<int>> eff(shapes.size());
  for (size_t k = 0; k < shapes.size(); ++k) {
    for (size_t d = 0; d < b.labels[k].size(); ++d) {
      int l = b.labels[k][d];
      if (shapes[k][d] == 1 && b.size[static_cast<size_t>(l)] != 1) continue;  // broadcast: constant along l
      if (std::find(eff[k].begin(), eff[k].end(), l) == eff[k].end()) eff[k].push_back(l);
    }
  }
  return eff;
}

Strategy parse_strategy(const std::string& s) {
  if (s == "auto") return Strategy::Auto;
  if (s == "greedy") return Strategy::Greedy;
  if (s == "optimal") return Strategy::Optimal;
  if (s == "none") return Strategy::None;
  throw Error(ErrorCode::InvalidArgument,
              str_cat(kOp, ": optimize must be 'auto', 'greedy', 'optimal' or 'none', got '", s, "'"), kOp);
}

// ------------------------------------------------------------------ path optimizer
namespace {

struct Ctx {
  const std::vector<int64_t>& size;
  LabelSet out;
  int n_labels;
  std::optional<int64_t> limit;
};

// Replays a list of pairwise contractions (positions in the current list; b < 0 moves a to the end)
// and fills in costs and result labels.
Path cost_steps(const std::vector<LabelSet>& ops, const std::vector<std::pair<int, int>>& pairs, const Ctx& c) {
  Path p;
  std::vector<LabelSet> cur = ops;
  for (auto [a, b] : pairs) {
    StepInfo s;
    s.a = a;
    s.b = b;
    LabelSet la = cur[static_cast<size_t>(a)], lb = b >= 0 ? cur[static_cast<size_t>(b)] : LabelSet();
    LabelSet rest = c.out;
    for (size_t i = 0; i < cur.size(); ++i)
      if (static_cast<int>(i) != a && static_cast<int>(i) != b) rest |= cur[i];
    // Labels of only one of the two (and needed nowhere else) are summed before the product.
    LabelSet both = (la & (rest | lb)) | (lb & (rest | la));
    LabelSet res = both & rest;
    s.flops = b >= 0 ? set_size(both, c.size) : 0.0;
    s.scaling = (b >= 0 ? both : la).count();
    s.size = set_size(res, c.size);
    s.labels = to_vec(res, c.n_labels);
    // Erase the higher position first.
    int hi = std::max(a, b), lo = std::min(a, b);
    cur.erase(cur.begin() + hi);
    if (lo >= 0) cur.erase(cur.begin() + lo);
    cur.push_back(res);
    p.flops += s.flops;
    if (cur.size() > 1) p.largest = std::max(p.largest, s.size);
    p.steps.push_back(std::move(s));
  }
  return p;
}

std::vector<std::pair<int, int>> greedy(const std::vector<LabelSet>& ops, const Ctx& c, const std::string& eq) {
  std::vector<LabelSet> cur = ops;
  std::vector<std::pair<int, int>> pairs;
  while (cur.size() > 1) {
    const bool last = cur.size() == 2;
    // Labels held by at least one, two, three of the current operands.
    LabelSet c1, c2, c3;
    for (const LabelSet& s : cur) {
      c3 |= c2 & s;
      c2 |= c1 & s;
      c1 |= s;
    }
    std::vector<double> own(cur.size());
    for (size_t i = 0; i < cur.size(); ++i) own[i] = set_size(cur[i], c.size);
    int bi = -1, bj = -1;
    bool b_shared = false;
    double b_cost = 0, b_flops = 0;
    for (size_t i = 0; i < cur.size(); ++i) {
      for (size_t j = i + 1; j < cur.size(); ++j) {
        // Labels needed after this contraction: in the output, or held by another operand.
        const LabelSet& si = cur[i];
        const LabelSet& sj = cur[j];
        LabelSet elsewhere = c.out | (c3 & si & sj) | (c2 & (si ^ sj)) | (c1 & ~si & ~sj);
        LabelSet both = (cur[i] & (elsewhere | cur[j])) | (cur[j] & (elsewhere | cur[i]));
        LabelSet res = both & elsewhere;
        double rs = set_size(res, c.size);
        if (c.limit && !last && rs > static_cast<double>(*c.limit)) continue;
        bool shared = (cur[i] & cur[j]).any();
        // Shared labels first (no outer products while a contraction is possible); then the
        // change in stored elements; then FLOPs.
        double cost = shared ? rs - own[i] - own[j] : rs;
        double fl = set_size(both, c.size);
        bool better = bi < 0 || (shared && !b_shared) ||
                      (shared == b_shared && (cost < b_cost || (cost == b_cost && fl < b_flops)));
        if (better) {
          bi = static_cast<int>(i), bj = static_cast<int>(j);
          b_shared = shared, b_cost = cost, b_flops = fl;
        }
      }
    }
    if (bi < 0)
      throw Error(ErrorCode::InvalidArgument,
                  str_cat(kOp, ": no contraction keeps every intermediate within memory_limit=", *c.limit, " elements (equation '", eq, "')"),
                  kOp);
    LabelSet both = cur[static_cast<size_t>(bi)] | cur[static_cast<size_t>(bj)];
    LabelSet rest = c.out;
    for (size_t i = 0; i < cur.size(); ++i)
      if (static_cast<int>(i) != bi && static_cast<int>(i) != bj) rest |= cur[i];
    pairs.emplace_back(bi, bj);
    cur.erase(cur.begin() + bj);
    cur.erase(cur.begin() + bi);
    cur.push_back(both & rest);
  }
  return pairs;
}

// Exact optimum over all binary contraction trees by dynamic programming over subsets (O(3^n)):
// minimal total FLOPs, ties broken by the largest intermediate.
std::vector<std::pair<int, int>> optimal(const std::vector<LabelSet>& ops, const Ctx& c, const std::string& eq) {
  const int n = static_cast<int>(ops.size());
  const uint32_t full = (1u << n) - 1;
  std::vector<LabelSet> uni(full + 1), res(full + 1);
  for (uint32_t s = 1; s <= full; ++s) {
    int low = __builtin_ctz(s);
    uni[s] = uni[s & (s - 1)] | ops[static_cast<size_t>(low)];
  }
  for (uint32_t s = 1; s <= full; ++s) res[s] = uni[s] & (c.out | uni[full & ~s]);
  std::vector<double> rsize(full + 1);
  for (uint32_t s = 1; s <= full; ++s) rsize[s] = set_size(res[s], c.size);
  const double inf = std::numeric_limits<double>::infinity();
  std::vector<double> cost(full + 1, inf), big(full + 1, 0);
  std::vector<uint32_t> split(full + 1, 0);
  for (int i = 0; i < n; ++i) cost[1u << i] = 0;
  for (uint32_t s = 1; s <= full; ++s) {
    if ((s & (s - 1)) == 0) continue;
    if (c.limit && s != full && rsize[s] > static_cast<double>(*c.limit)) continue;
    const uint32_t low = s & (~s + 1);  // the lowest operand goes to the left part (each split once)
    for (uint32_t a = (s - 1) & s; a > 0; a = (a - 1) & s) {
      if (!(a & low)) continue;
      const uint32_t b = s & ~a;
      if (cost[a] == inf || cost[b] == inf) continue;
      double fl = set_size(res[a] | res[b], c.size);
      double total = cost[a] + cost[b] + fl;
      double mx = std::max({big[a], big[b], s == full ? 0.0 : rsize[s]});
      if (total < cost[s] || (total == cost[s] && mx < big[s])) {
        cost[s] = total, big[s] = mx, split[s] = a;
      }
    }
  }
  if (cost[full] == inf)
    throw Error(ErrorCode::InvalidArgument,
                str_cat(kOp, ": no contraction path keeps every intermediate within memory_limit=", *c.limit, " elements (equation '", eq, "')"),
                kOp);
  // Post-order over the tree -> numpy-style positions in the current list.
  std::vector<std::pair<uint32_t, uint32_t>> order;
  // Iterative post-order: collect nodes so that children come before parents.
  std::vector<std::pair<uint32_t, bool>> st{{full, false}};
  while (!st.empty()) {
    auto [s, done] = st.back();
    st.pop_back();
    if ((s & (s - 1)) == 0) continue;
    if (done) {
      order.emplace_back(split[s], s & ~split[s]);
      continue;
    }
    st.push_back({s, true});
    st.push_back({s & ~split[s], false});
    st.push_back({split[s], false});
  }
  std::vector<uint32_t> cur;
  for (int i = 0; i < n; ++i) cur.push_back(1u << i);
  std::vector<std::pair<int, int>> pairs;
  for (auto [a, b] : order) {
    int ia = static_cast<int>(std::find(cur.begin(), cur.end(), a) - cur.begin());
    int ib = static_cast<int>(std::find(cur.begin(), cur.end(), b) - cur.begin());
    if (ia > ib) std::swap(ia, ib);
    pairs.emplace_back(ia, ib);
    cur.erase(cur.begin() + ib);
    cur.erase(cur.begin() + ia);
    cur.push_back(a | b);
  }
  return pairs;
}

std::vector<std::pair<int, int>> from_explicit(const Dims& flat, size_t n, const std::string& eq) {
  std::vector<std::pair<int, int>> pairs;
  size_t live = n;
  size_t i = 0;
  auto bad = [&](const std::string& why) -> Error {
    return Error(ErrorCode::InvalidArgument, str_cat(kOp, ": invalid contraction path for '", eq, "': ", why), kOp);
  };
  while (i < flat.size()) {
    int64_t k = flat[i++];
    if (k < 1 || static_cast<size_t>(k) > flat.size() - i) throw bad(str_cat("step length ", k, " out of range"));
    std::vector<int64_t> pos(flat.begin() + static_cast<std::ptrdiff_t>(i), flat.begin() + static_cast<std::ptrdiff_t>(i + static_cast<size_t>(k)));
    i += static_cast<size_t>(k);
    for (size_t a = 0; a < pos.size(); ++a) {
      if (pos[a] < 0 || static_cast<size_t>(pos[a]) >= live)
        throw bad(str_cat("position ", pos[a], " out of range (", live, " operands left at this step)"));
      for (size_t b = 0; b < a; ++b)
        if (pos[a] == pos[b]) throw bad(str_cat("position ", pos[a], " repeated in one step"));
    }
    if (k == 1) {
      pairs.emplace_back(static_cast<int>(pos[0]), -1);
      continue;
    }
    // A k-ary step: the first two, then the running result (at the end) with each next one.
    pairs.emplace_back(static_cast<int>(std::min(pos[0], pos[1])), static_cast<int>(std::max(pos[0], pos[1])));
    std::vector<int64_t> removed{pos[0], pos[1]};
    live -= 1;
    for (size_t j = 2; j < pos.size(); ++j) {
      int64_t p = pos[j];
      int64_t shift = 0;
      for (int64_t r : removed) shift += r < p;
      int at = static_cast<int>(p - shift);
      pairs.emplace_back(at, static_cast<int>(live - 1));
      removed.push_back(p);
      live -= 1;
    }
  }
  if (live != 1) throw bad(str_cat("it leaves ", live, " operands uncontracted"));
  return pairs;
}

}  // namespace

Path plan_path(const std::vector<std::vector<int>>& ops, const std::vector<int>& out, const std::vector<int64_t>& size,
               Strategy strategy, std::optional<int64_t> memory_limit, const std::optional<Dims>& explicit_path,
               const std::string& equation) {
  Ctx c{size, to_set(out), static_cast<int>(size.size()), memory_limit};
  std::vector<LabelSet> sets;
  for (const auto& o : ops) sets.push_back(to_set(o));
  const size_t n = ops.size();
  std::vector<std::pair<int, int>> pairs;
  if (explicit_path) {
    pairs = from_explicit(*explicit_path, n, equation);
  } else if (n >= 2) {
    if (strategy == Strategy::None) {
      for (size_t i = 1; i < n; ++i) pairs.emplace_back(0, 1);
    } else if (n == 2) {
      pairs.emplace_back(0, 1);
    } else if ((strategy == Strategy::Optimal && n <= 16) || (strategy == Strategy::Auto && n <= 10)) {
      pairs = optimal(sets, c, equation);
    } else {
      pairs = greedy(sets, c, equation);
    }
  }
  Path p = cost_steps(sets, pairs, c);
  LabelSet all;
  for (const LabelSet& s : sets) all |= s;
  p.naive_flops = set_size(all, size) * static_cast<double>(std::max<size_t>(1, n - 1));
  p.naive_scaling = all.count();
  if (memory_limit && !explicit_path)
    for (size_t i = 0; i + 1 < p.steps.size(); ++i)
      if (p.steps[i].size > static_cast<double>(*memory_limit))
        throw Error(ErrorCode::InvalidArgument, str_cat(kOp, ": no contraction keeps every intermediate within memory_limit=",
                                                        *memory_limit, " elements"), kOp);
  return p;
}

// ------------------------------------------------------------------ plan cache
namespace {
std::mutex g_mu;
std::unordered_map<std::string, std::shared_ptr<const Plan>>& cache() {
  static auto* m = new std::unordered_map<std::string, std::shared_ptr<const Plan>>();
  return *m;
}
constexpr size_t kMaxCached = 4096;     // plans kept (the map is cleared when full)
constexpr size_t kMaxCachedKey = 4096;  // bytes of equation + shapes; bounds the cache at ~16 MiB of keys
}  // namespace

std::shared_ptr<const Plan> get_plan(const std::string& equation, const std::vector<Dims>& shapes, const std::string& optimize,
                                     std::optional<int64_t> memory_limit, const std::optional<Dims>& explicit_path) {
  std::string key;
  key.reserve(equation.size() + 16 * shapes.size() + 32);
  key += equation;
  key += '\x01';
  for (const Dims& s : shapes) {
    for (int64_t d : s) {
      key += std::to_string(d);
      key += ',';
    }
    key += ';';
  }
  key += '\x01';
  key += optimize;
  if (memory_limit) key += "|m" + std::to_string(*memory_limit);
  if (explicit_path) {
    key += "|p";
    for (int64_t v : *explicit_path) key += std::to_string(v) + ",";
  }
  {
    std::lock_guard<std::mutex> lock(g_mu);
    auto it = cache().find(key);
    if (it != cache().end()) return it->second;
  }
  Strategy strategy = parse_strategy(optimize);
  if (memory_limit && *memory_limit < 0)
    throw Error(ErrorCode::InvalidArgument, str_cat(kOp, ": memory_limit must be >= 0, got ", *memory_limit), kOp);
  auto plan = std::make_shared<Plan>();
  Equation eq = parse(equation);
  plan->bound = einsum::bind(eq, shapes);
  plan->eff = effective_labels(plan->bound, shapes);
  plan->path = plan_path(plan->eff, plan->bound.out, plan->bound.size, strategy, memory_limit, explicit_path, equation);
  if (key.size() > kMaxCachedKey) return plan;  // huge equations are planned each time, not kept
  std::lock_guard<std::mutex> lock(g_mu);
  if (cache().size() >= kMaxCached) cache().clear();
  cache().emplace(key, plan);
  return plan;
}

void clear_plan_cache() {
  std::lock_guard<std::mutex> lock(g_mu);
  cache().clear();
}
size_t plan_cache_size() {
  std::lock_guard<std::mutex> lock(g_mu);
  return cache().size();
}

}  // namespace einsum
}  // namespace heron
