#pragma once

#include <algorithm>
#include <bit>
#include <cstddef>
#include <cstdint>
#include <iterator>
#include <limits>
#include <utility>
#include <vector>

namespace base {

// A map from 64-bit keys (hashes of longer keys: the caller hashes its key text, and never keeps
// it) to small values, holding at most `capacity` entries and evicting the least recently used.
// Flat, for a small and predictable footprint: the entries live in one dense vector, linked from
// the most to the least recently used by 32-bit indices, and are found through an open-addressing
// table of 32-bit indices (linear probing, never more than half full). Not thread-safe.
//
// Memory: entryBytes() (the key, two links and the Value) per entry, plus 8 to 16 bytes of table
// per entry (8 when `capacity` is a power of two), plus whatever a Value holds on the heap. Both
// vectors grow with the entries up to `capacity`, and shrink again when three quarters of them
// are gone. Every operation is O(1) (amortized, expected).
template <typename Value>
class HashedLru {
 public:
  // `capacity` is at least 1.
  explicit HashedLru(size_t capacity)
      : capacity_(std::clamp<size_t>(capacity, 1, std::numeric_limits<uint32_t>::max() / 4)) {}

  // Pointers returned stay valid until the next put() or removal.

  // The value of `key`, made the most recently used; null when absent.
  Value* get(uint64_t key) {
    const uint32_t index = find(key);
    if (index == kNone) return nullptr;
    unlink(index);
    linkFront(index);
    return &nodes_[index].value;
  }

  // The value of `key`, its recency untouched; null when absent.
  Value* peek(uint64_t key) {
    const uint32_t index = find(key);
    return index == kNone ? nullptr : &nodes_[index].value;
  }

  // Sets the value of `key` and makes it the most recently used; evicts the least recently
  // used entry when that would hold more than `capacity`.
  Value& put(uint64_t key, Value value) {
    if (const uint32_t index = find(key); index != kNone) {
      nodes_[index].value = std::move(value);
      unlink(index);
      linkFront(index);
      return nodes_[index].value;
    }
    if (nodes_.size() >= capacity_) removeNode(tail_);
    if (nodes_.size() == nodes_.capacity()) {
      nodes_.reserve(std::min(capacity_, std::max<size_t>(4, 2 * nodes_.size())));
    }
    if (2 * (nodes_.size() + 1) > table_.size()) rehash(std::max<size_t>(8, 2 * table_.size()));
    const auto index = static_cast<uint32_t>(nodes_.size());
    nodes_.push_back(Node{key, kNone, kNone, std::move(value)});
    table_[emptySlot(key)] = index;
    linkFront(index);
    return nodes_[index].value;
  }

  // False when `key` was absent.
  bool erase(uint64_t key) {
    const uint32_t index = find(key);
    if (index == kNone) return false;
    removeNode(index);
    return true;
  }

  // Removes least recently used entries for as long as `expired(value)` holds; returns how many.
  template <typename Predicate>
  size_t evictOldestWhile(Predicate expired) {
    size_t evicted = 0;
    while (tail_ != kNone && expired(static_cast<const Value&>(nodes_[tail_].value))) {
      removeNode(tail_);
      ++evicted;
    }
    return evicted;
  }

  // The least recently used entry's key and value; null when empty.
  const Value* oldest(uint64_t* key = nullptr) const {
    if (tail_ == kNone) return nullptr;
    if (key != nullptr) *key = nodes_[tail_].key;
    return &nodes_[tail_].value;
  }

  // Keys from the most to the least recently used (for tests).
  std::vector<uint64_t> keysByRecency() const {
    std::vector<uint64_t> keys;
    for (uint32_t i = head_; i != kNone; i = nodes_[i].older) keys.push_back(nodes_[i].key);
    return keys;
  }

  size_t size() const { return nodes_.size(); }
  bool empty() const { return nodes_.empty(); }
  size_t capacity() const { return capacity_; }
  // Bytes allocated now for the entries and the table (not what Values hold on the heap).
  size_t allocatedBytes() const {
    return nodes_.capacity() * sizeof(Node) + table_.capacity() * sizeof(uint32_t);
  }
  static constexpr size_t entryBytes() { return sizeof(Node); }

 private:
  static constexpr uint32_t kNone = std::numeric_limits<uint32_t>::max();

  struct Node {
    uint64_t key;
    uint32_t newer;  // towards the most recently used; kNone at the head
    uint32_t older;  // towards the least recently used; kNone at the tail
    Value value;
  };

  // Fibonacci hashing: the key's high bits, well mixed, pick the home slot.
  size_t home(uint64_t key) const {
    return static_cast<size_t>((key * 0x9E3779B97F4A7C15ull) >> shift_);
  }
  size_t mask() const { return table_.size() - 1; }

  // The node of `key`, or kNone.
  uint32_t find(uint64_t key) const {
    const size_t slot = findSlot(key);
    return slot == table_.size() ? kNone : table_[slot];
  }
  // The table slot that holds `key`'s node; table_.size() when absent.
  size_t findSlot(uint64_t key) const {
    if (table_.empty()) return 0;
    for (size_t slot = home(key);; slot = (slot + 1) & mask()) {
      if (table_[slot] == kNone) return table_.size();
      if (nodes_[table_[slot]].key == key) return slot;
    }
  }
  size_t emptySlot(uint64_t key) const {
    size_t slot = home(key);
    while (table_[slot] != kNone) slot = (slot + 1) & mask();
    return slot;
  }

  void rehash(size_t slots) {  // `slots`: a power of two, more than twice the entries
    table_.assign(slots, kNone);
    shift_ = 64 - static_cast<unsigned>(std::countr_zero(slots));
    for (uint32_t i = 0; i < nodes_.size(); ++i) table_[emptySlot(nodes_[i].key)] = i;
  }

  // Empties a table slot, shifting later entries of its probe run back (no tombstones).
  void clearSlot(size_t hole) {
    for (size_t next = (hole + 1) & mask(); table_[next] != kNone; next = (next + 1) & mask()) {
      const size_t wanted = home(nodes_[table_[next]].key);
      // The entry at `next` stays when its home lies cyclically in (hole, next].
      const bool stays =
          hole <= next ? (hole < wanted && wanted <= next) : (hole < wanted || wanted <= next);
      if (stays) continue;
      table_[hole] = table_[next];
      hole = next;
    }
    table_[hole] = kNone;
  }

  void unlink(uint32_t index) {
    Node& node = nodes_[index];
    if (node.newer != kNone) nodes_[node.newer].older = node.older;
    if (node.older != kNone) nodes_[node.older].newer = node.newer;
    if (head_ == index) head_ = node.older;
    if (tail_ == index) tail_ = node.newer;
    node.newer = node.older = kNone;
  }

  void linkFront(uint32_t index) {
    Node& node = nodes_[index];
    node.newer = kNone;
    node.older = head_;
    if (head_ != kNone) nodes_[head_].newer = index;
    head_ = index;
    if (tail_ == kNone) tail_ = index;
  }

  // Removes a node, moving the last one into its place to keep the vector dense.
  void removeNode(uint32_t index) {
    clearSlot(findSlot(nodes_[index].key));
    unlink(index);
    const auto last = static_cast<uint32_t>(nodes_.size() - 1);
    if (index != last) {
      table_[findSlot(nodes_[last].key)] = index;
      nodes_[index] = std::move(nodes_[last]);
      Node& moved = nodes_[index];
      if (moved.newer != kNone) nodes_[moved.newer].older = index;
      if (moved.older != kNone) nodes_[moved.older].newer = index;
      if (head_ == last) head_ = index;
      if (tail_ == last) tail_ = index;
    }
    nodes_.pop_back();
    if (nodes_.capacity() > 16 && 4 * nodes_.size() <= nodes_.capacity()) shrink();
  }

  void shrink() {
    std::vector<Node> smaller;
    smaller.reserve(std::max<size_t>(4, 2 * nodes_.size()));
    std::move(nodes_.begin(), nodes_.end(), std::back_inserter(smaller));
    nodes_ = std::move(smaller);
    size_t slots = 8;
    while (slots < 2 * nodes_.capacity()) slots *= 2;
    std::vector<uint32_t>().swap(table_);
    rehash(slots);
  }

  const size_t capacity_;
  std::vector<Node> nodes_;
  std::vector<uint32_t> table_;  // node indices; kNone: empty. Size: 0 or a power of two
  unsigned shift_ = 64;
  uint32_t head_ = kNone;  // the most recently used
  uint32_t tail_ = kNone;  // the least recently used
};

}  // namespace base
