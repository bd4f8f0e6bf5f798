// A standalone driver for libFuzzer-style targets, for toolchains without -fsanitize=fuzzer:
//   heron_fuzz_safetensors [--iterations N] [--seed S] FILE_OR_DIR...
// runs every corpus file, then N random mutations (byte flips, insertions, deletions, truncations,
// splices, header-length rewrites) of the corpus entries through LLVMFuzzerTestOneInput.
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <random>
#include <string>
#include <vector>

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size);

namespace {
std::string read_file(const std::filesystem::path& p) {
  std::ifstream f(p, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(f), std::istreambuf_iterator<char>());
}

void run(const std::string& s) { LLVMFuzzerTestOneInput(reinterpret_cast<const uint8_t*>(s.data()), s.size()); }

std::string mutate(std::string s, const std::vector<std::string>& corpus, std::mt19937_64& rng) {
  auto pick = [&](size_t n) { return n ? static_cast<size_t>(rng() % n) : 0; };
  int rounds = 1 + static_cast<int>(rng() % 4);
  for (int r = 0; r < rounds; ++r) {
    switch (rng() % 8) {
      case 0:  // flip a byte
        if (!s.empty()) s[pick(s.size())] ^= static_cast<char>(1 + rng() % 255);
        break;
      case 1:  // insert interesting bytes
        s.insert(pick(s.size() + 1), std::string(1 + rng() % 4, "{}[]\",:0-9e \xff"[rng() % 14]));
        break;
      case 2:  // delete a range
        if (!s.empty()) { size_t a = pick(s.size()); s.erase(a, 1 + rng() % 8); }
        break;
      case 3:  // truncate
        s.resize(pick(s.size() + 1));
        break;
      case 4: {  // rewrite the header length
        uint64_t n = rng() % 3 == 0 ? rng() : (s.size() >= 8 ? s.size() - 8 - rng() % 16 : rng() % 64);
        if (s.size() < 8) s.resize(8);
        for (int i = 0; i < 8; ++i) s[i] = static_cast<char>((n >> (8 * i)) & 0xff);
        break;
      }
      case 5: {  // splice another entry
        const std::string& o = corpus[pick(corpus.size())];
        if (!o.empty()) s = s.substr(0, pick(s.size() + 1)) + o.substr(pick(o.size()));
        break;
      }
      case 6: {  // change a digit (offsets and shapes)
        std::vector<size_t> digits;
        for (size_t i = 8; i < s.size(); ++i) if (s[i] >= '0' && s[i] <= '9') digits.push_back(i);
        if (!digits.empty()) s[digits[pick(digits.size())]] = static_cast<char>('0' + rng() % 10);
        break;
      }
      default:  // duplicate a range
        if (!s.empty()) { size_t a = pick(s.size()); s.insert(a, s.substr(a, 1 + rng() % 16)); }
        break;
    }
  }
  return s;
}
}  // namespace

int main(int argc, char** argv) {
  long iterations = 20000;
  uint64_t seed = 1;
  std::vector<std::string> corpus;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    if (a == "--iterations" && i + 1 < argc) { iterations = std::atol(argv[++i]); continue; }
    if (a == "--seed" && i + 1 < argc) { seed = std::strtoull(argv[++i], nullptr, 10); continue; }
    std::filesystem::path p(a);
    if (std::filesystem::is_directory(p)) {
      for (const auto& e : std::filesystem::directory_iterator(p))
        if (e.is_regular_file()) corpus.push_back(read_file(e.path()));
    } else if (std::filesystem::exists(p)) {
      corpus.push_back(read_file(p));
    } else {
      std::fprintf(stderr, "fuzz driver: %s does not exist\n", a.c_str());
      return 2;
    }
  }
  if (corpus.empty()) corpus.push_back(std::string());
  for (const auto& c : corpus) run(c);
  std::mt19937_64 rng(seed);
  for (long i = 0; i < iterations; ++i) run(mutate(corpus[rng() % corpus.size()], corpus, rng));
  std::printf("fuzz driver: %zu corpus entries, %ld mutations, no crash\n", corpus.size(), iterations);
  return 0;
}
