// Kernel attributes as a C++ value tree, converted once from the JS object a kernel call
// brings. Why not read the Napi::Object directly: a recorded step (recorder.h) replays its
// kernel calls long after the JS call returned, without JS, so every attribute a kernel
// reads must live on the C++ side.
#pragma once
#include <napi.h>
#include <cstdint>
#include <memory>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

struct Value {
  enum Kind { Null, Bool, Num, Str, Arr, Obj } kind = Null;
  bool b = false;
  double num = 0;
  std::string s;
  std::vector<Value> arr;
  std::vector<std::pair<std::string, Value>> obj;

  const Value* field(const std::string& k) const {
    for (const auto& [name, v] : obj)
      if (name == k) return &v;
    return nullptr;
  }
  bool truthy() const { return kind == Bool ? b : kind == Num ? num != 0 : kind == Str ? !s.empty() : kind != Null; }
  bool operator==(const Value& o) const { return kind == o.kind && b == o.b && (num == o.num || (num != num && o.num != o.num)) && s == o.s && arr == o.arr && obj == o.obj; }
};

inline Value fromNapi(const Napi::Value& v, int depth = 0) {
  Value out;
  if (depth > 16) throw std::runtime_error("kernel attributes nest deeper than 16 levels");
  if (v.IsBoolean()) {
    out.kind = Value::Bool;
    out.b = v.As<Napi::Boolean>().Value();
  } else if (v.IsNumber()) {
    out.kind = Value::Num;
    out.num = v.As<Napi::Number>().DoubleValue();
  } else if (v.IsString()) {
    out.kind = Value::Str;
    out.s = v.As<Napi::String>().Utf8Value();
  } else if (v.IsArray()) {
    out.kind = Value::Arr;
    auto a = v.As<Napi::Array>();
    for (uint32_t i = 0; i < a.Length(); i++) out.arr.push_back(fromNapi(a.Get(i), depth + 1));
  } else if (v.IsTypedArray()) {
    out.kind = Value::Arr;
    auto t = v.As<Napi::TypedArray>();
    auto obj = v.As<Napi::Object>();
    for (size_t i = 0; i < t.ElementLength(); i++) out.arr.push_back(fromNapi(obj.Get(static_cast<uint32_t>(i)), depth + 1));
  } else if (v.IsObject() && !v.IsFunction()) {
    out.kind = Value::Obj;
    auto o = v.As<Napi::Object>();
    auto keys = o.GetPropertyNames();
    for (uint32_t i = 0; i < keys.Length(); i++) {
      auto k = keys.Get(i).ToString().Utf8Value();
      out.obj.emplace_back(k, fromNapi(o.Get(k), depth + 1));
    }
  }
  return out;
}

inline std::vector<int64_t> intsOf(const Value& v) {
  std::vector<int64_t> out;
  if (v.kind == Value::Num) return {static_cast<int64_t>(v.num)};
  for (const auto& x : v.arr) out.push_back(static_cast<int64_t>(x.num));
  return out;
}

// What kernels read: has(k), num(k), i64(k), flag(k), str(k), ints(k), get(k). A dispatched
// call reads its JS object lazily, as it always did (converting every attribute would cost
// each kernel call microseconds); a recorded call keeps a value tree (frozen()).
struct Attrs {
  std::shared_ptr<const Value> v = std::make_shared<Value>();
  Napi::Object o;
  bool js = false;

  Attrs() = default;
  explicit Attrs(Value val) : v(std::make_shared<const Value>(std::move(val))) {}
  static Attrs of(const Napi::Value& value) {
    Attrs a;
    if (value.IsObject()) {
      a.o = value.As<Napi::Object>();
      a.js = true;
    }
    return a;
  }
  /** The same attributes as a value tree that outlives the JS call (for a recording). */
  Attrs frozen() const { return js ? Attrs(fromNapi(o)) : *this; }

  bool has(const char* k) const {
    if (js) return o.Has(k) && !o.Get(k).IsUndefined() && !o.Get(k).IsNull();
    auto f = v->field(k);
    return f && f->kind != Value::Null;
  }
  /** One attribute as a value (a copy: arrays such as weightDecays or paddings). */
  Value get(const char* k) const {
    if (js) {
      if (!o.Has(k)) throw std::runtime_error(std::string("kernel attribute ") + k + " is missing");
      return fromNapi(o.Get(k));
    }
    auto f = v->field(k);
    if (!f) throw std::runtime_error(std::string("kernel attribute ") + k + " is missing");
    return *f;
  }
  double num(const char* k) const {
    if (js) {
      auto x = o.Get(k);
      if (x.IsBoolean()) return x.As<Napi::Boolean>().Value() ? 1 : 0;
      if (!x.IsNumber()) throw std::runtime_error(std::string("kernel attribute ") + k + " is not a number");
      return x.As<Napi::Number>().DoubleValue();
    }
    auto f = get(k);
    if (f.kind != Value::Num && f.kind != Value::Bool) throw std::runtime_error(std::string("kernel attribute ") + k + " is not a number");
    return f.kind == Value::Bool ? (f.b ? 1 : 0) : f.num;
  }
  int64_t i64(const char* k) const { return static_cast<int64_t>(num(k)); }
  bool flag(const char* k) const {
    if (js) return has(k) && o.Get(k).ToBoolean().Value();
    return has(k) && v->field(k)->truthy();
  }
  std::string str(const char* k) const {
    if (js) {
      auto x = o.Get(k);
      if (!x.IsString()) throw std::runtime_error(std::string("kernel attribute ") + k + " is not a string");
      return x.As<Napi::String>().Utf8Value();
    }
    auto f = get(k);
    if (f.kind != Value::Str) throw std::runtime_error(std::string("kernel attribute ") + k + " is not a string");
    return f.s;
  }
  std::vector<int64_t> ints(const char* k) const { return intsOf(get(k)); }
};
