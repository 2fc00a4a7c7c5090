// SQL entry points of the rating aggregates (src/sql/rating_aggregates.sql):
// the type metering.aggregate_state and the transition, combine and final
// functions of metering.latest, metering.unique_count, metering.counter_total
// and metering.time_weighted. The states and their rules are pure C++ in
// src/core/aggregates.hpp; this file only moves them in and out of Postgres.
//
// State type. The aggregates' STYPE is metering.aggregate_state, a varlena
// whose bytes are the core's serialized form (text I/O: \x and hex; binary
// I/O: the bytes), so that a distributed engine can ship partial states
// between shards and finish them with the *_combine and *_final functions.
//
// Why expanded objects (utils/expandeddatum.h), as array_append does:
// unique_count, counter_total and time_weighted keep many entries. A flat
// varlena state would be copied by nodeAgg after every row that changes it
// (O(n) per row, O(n^2) per group). Instead, inside an aggregate
// (AggCheckCallContext), the transition and combine functions keep the state
// as an expanded object: a header and the C++ state object in a memory
// context of its own, a child of the aggregate context, and return its
// read-write pointer. nodeAgg keeps such a pointer without copying it
// (ExecAggTransReparent) and deletes the context with the group, so the
// state is updated in place, O(1) amortized per row; Postgres frees the
// memory and counts it against work_mem in hash aggregation. Whenever
// Postgres needs the flat form (a parallel worker sending its partial state
// to the leader, a state stored or printed) it calls flat_size/flatten below,
// which serialize. Costs: about 1 KB of memory context per group.
//
// latest is O(1), so it stays a flat varlena (no 1 KB context per group):
// when a row wins, the new state is written over the old one when it fits
// (in an aggregate), else built anew and copied by nodeAgg; a row that loses
// (the common case out of time order) costs a look at the state's key.
//
// Rules of the house: every body runs in metering::pg::guarded(); Postgres
// calls that can raise an error while C++ objects are alive run in pg_safe();
// C++ containers allocate through ContextResource, which never lets a
// Postgres error out (it asks palloc for NULL and throws std::bad_alloc).
#include "core/aggregates.hpp"
#include "core/scalar_state.hpp"
#include "core/decimal.hpp"
#include "core/errors.hpp"
#include "core/validation.hpp"
#include "pg/datum.hpp"
#include "pg/guard.hpp"

extern "C" {
#include "lib/stringinfo.h"
#include "miscadmin.h"
#include "utils/builtins.h"
#include "utils/expandeddatum.h"
#include "utils/memutils.h"
#include "utils/numeric.h"
#include "utils/timestamp.h"
}

#include <algorithm>
#include <cstring>
#include <memory_resource>
#include <new>
#include <optional>
#include <string>
#include <string_view>
#include <type_traits>

namespace {

namespace core = metering::core;
namespace agg = metering::core::agg;
using metering::pg::guarded;
using metering::pg::pg_safe;

// --- memory ---------------------------------------------------------------------

// A pmr resource over a Postgres memory context. No Postgres error may
// escape into STL code: sizes palloc would refuse are refused here, and
// MCXT_ALLOC_NO_OOM makes palloc return NULL instead of raising.
class ContextResource final : public std::pmr::memory_resource {
public:
    explicit ContextResource(MemoryContext context) : context_(context) {}

private:
    void* do_allocate(std::size_t bytes, std::size_t alignment) override
    {
        if (alignment > MAXIMUM_ALIGNOF || !AllocHugeSizeIsValid(bytes))
            throw std::bad_alloc();
        void* p = MemoryContextAllocExtended(context_, bytes, MCXT_ALLOC_HUGE | MCXT_ALLOC_NO_OOM);
        if (p == nullptr)
            throw std::bad_alloc();
        return p;
    }
    void do_deallocate(void* p, std::size_t, std::size_t) override { pfree(p); }
    bool do_is_equal(const std::pmr::memory_resource& other) const noexcept override
    {
        return this == &other;
    }

    MemoryContext context_;
};

// --- Postgres interrupts inside the core's long loops -----------------------------

// Query cancel while C++ objects are alive: CHECK_FOR_INTERRUPTS's longjmp
// is caught by pg_safe and goes on as a C++ exception (PgError), which
// guarded() raises again once the stack has unwound.
void check_postgres_interrupts()
{
    if (InterruptPending)
        pg_safe([] { CHECK_FOR_INTERRUPTS(); });
}

[[maybe_unused]] const bool interrupt_check_installed =
    (agg::set_interrupt_check(&check_postgres_interrupts), true);

// --- values in and out ------------------------------------------------------------

std::string_view text_arg(FunctionCallInfo fcinfo, int arg)
{
    text* t = pg_safe([&] { return PG_GETARG_TEXT_PP(arg); });
    return metering::pg::view(t);
}

char* numeric_text(Numeric value)
{
    return pg_safe(
        [&] { return DatumGetCString(DirectFunctionCall1(numeric_out, NumericGetDatum(value))); });
}

// A numeric argument, refused (MT003) when NaN or infinite.
Numeric finite_numeric_arg(FunctionCallInfo fcinfo, int arg, const char* field)
{
    Numeric value = pg_safe([&] { return PG_GETARG_NUMERIC(arg); });
    if (numeric_is_nan(value) || numeric_is_inf(value))
        core::throw_non_finite(field, numeric_text(value));
    return value;
}

// Through the text form, as the rest of the bridge converts numerics.
core::Decimal to_decimal(Numeric value)
{
    char* text = numeric_text(value);
    core::Decimal result = core::Decimal::parse(text);
    pfree(text);
    return result;
}

core::Decimal decimal_arg(FunctionCallInfo fcinfo, int arg, const char* field)
{
    return to_decimal(finite_numeric_arg(fcinfo, arg, field));
}

std::int64_t tiebreak_arg(FunctionCallInfo fcinfo, int arg, bool with_tiebreak)
{
    if (!with_tiebreak)
        return 0;
    if (PG_ARGISNULL(arg))
        core::throw_null_argument("tiebreak");
    return PG_GETARG_INT64(arg);
}

Datum numeric_datum(const core::Decimal& value)
{
    std::string text = value.to_string();
    return pg_safe([&] {
        return DirectFunctionCall3(numeric_in, CStringGetDatum(text.c_str()),
                                   ObjectIdGetDatum(InvalidOid), Int32GetDatum(-1));
    });
}

Datum null_datum(FunctionCallInfo fcinfo)
{
    fcinfo->isnull = true;
    return Datum(0);
}

// The state argument as it came, for a row that changes nothing.
Datum unchanged_state(FunctionCallInfo fcinfo)
{
    return PG_ARGISNULL(0) ? null_datum(fcinfo) : PG_GETARG_DATUM(0);
}

// The flat bytes of a state datum (detoasted; an expanded object is flattened).
std::string_view state_bytes(Datum datum, struct varlena** flat = nullptr)
{
    struct varlena* v = pg_safe([&] { return PG_DETOAST_DATUM_PACKED(datum); });
    if (flat != nullptr)
        *flat = v;
    return std::string_view(VARDATA_ANY(v), VARSIZE_ANY_EXHDR(v));
}

std::size_t checked_varlena_size(std::size_t payload)
{
    if (payload > MaxAllocSize - VARHDRSZ)
        throw core::Error(core::sqlstate::kProgramLimitExceeded,
                          "aggregate state of " + std::to_string(payload) +
                              " bytes is larger than a Postgres value may be");
    return payload + VARHDRSZ;
}

Datum bytes_datum(std::string_view bytes)
{
    std::size_t size = checked_varlena_size(bytes.size());
    auto* out = static_cast<struct varlena*>(pg_safe([&] { return palloc(size); }));
    SET_VARSIZE(out, size);
    std::memcpy(VARDATA(out), bytes.data(), bytes.size());
    return PointerGetDatum(out);
}

template <typename S>
Datum flat_datum(S& state)
{
    std::size_t size = checked_varlena_size(state.serialized_size());
    auto* out = static_cast<struct varlena*>(pg_safe([&] { return palloc(size); }));
    SET_VARSIZE(out, size);
    state.serialize_into(VARDATA(out), size - VARHDRSZ);
    return PointerGetDatum(out);
}

// --- expanded states ------------------------------------------------------------

template <typename S>
S new_state(bool with_tiebreak, std::pmr::memory_resource* memory)
{
    if constexpr (std::is_same_v<S, agg::UniqueCountState>)
        return S(memory);
    else
        return S(with_tiebreak, memory);
}

template <typename S>
bool with_tiebreak_of(const S& state)
{
    if constexpr (std::is_same_v<S, agg::UniqueCountState>)
        return false;
    else
        return state.with_tiebreak();
}

// The expanded object: the header first (standard layout), so that the
// ExpandedObjectHeader* Postgres hands back is a StateObject*.
struct StateObject {
    ExpandedObjectHeader header;
    void* payload;  // a Payload<S>, in header.eoh_context like the rest
};

template <typename S>
struct Payload {
    ContextResource memory;
    S state;
    Payload(MemoryContext context, bool with_tiebreak)
        : memory(context), state(new_state<S>(with_tiebreak, &memory))
    {
    }
};

template <typename S>
S& state_of(ExpandedObjectHeader* header)
{
    return static_cast<Payload<S>*>(reinterpret_cast<StateObject*>(header)->payload)->state;
}

// Called by Postgres (heap_form_tuple, datumCopy, detoasting) when it needs
// the flat form. Serializing compacts counter and gauge states first (their
// content stays the same).
template <typename S>
Size state_flat_size(ExpandedObjectHeader* header)
{
    return guarded([&]() -> Size { return checked_varlena_size(state_of<S>(header).serialized_size()); });
}

template <typename S>
void state_flatten(ExpandedObjectHeader* header, void* result, Size allocated_size)
{
    guarded([&] {
        S& state = state_of<S>(header);
        SET_VARSIZE(result, allocated_size);
        state.serialize_into(VARDATA(result), allocated_size - VARHDRSZ);
    });
}

template <typename S>
const ExpandedObjectMethods kMethods = {&state_flat_size<S>, &state_flatten<S>};

// Our expanded object of type S behind a datum, or nullptr.
template <typename S>
StateObject* expanded_of(Datum datum)
{
    if (!VARATT_IS_EXTERNAL_EXPANDED(DatumGetPointer(datum)))
        return nullptr;
    ExpandedObjectHeader* header = DatumGetEOHP(datum);
    if (header->eoh_methods != &kMethods<S>)
        return nullptr;
    return reinterpret_cast<StateObject*>(header);
}

// A new empty state in a memory context of its own under parent.
template <typename S>
StateObject* new_state_object(MemoryContext parent, bool with_tiebreak)
{
    static_assert(alignof(Payload<S>) <= MAXIMUM_ALIGNOF, "payload alignment");
    static_assert(std::is_standard_layout_v<StateObject>, "header first");
    MemoryContext context = nullptr;
    auto* memory = static_cast<char*>(pg_safe([&]() -> void* {
        context = AllocSetContextCreate(parent, "metering aggregate state", ALLOCSET_SMALL_SIZES);
        return MemoryContextAlloc(context, MAXALIGN(sizeof(StateObject)) + sizeof(Payload<S>));
    }));
    auto* object = reinterpret_cast<StateObject*>(memory);
    EOH_init_header(&object->header, &kMethods<S>, context);  // stores fields; cannot fail
    // Constructing allocates nothing yet; its destructor is never run: the
    // memory context goes as a whole, with everything the state allocated.
    object->payload = new (memory + MAXALIGN(sizeof(StateObject))) Payload<S>(context, with_tiebreak);
    return object;
}

// The state a transition or combine function updates (argument 0). In an
// aggregate it is an expanded object in the aggregate's context, updated in
// place from row to row; outside one (a direct SQL call) it is a temporary
// whose flat form is returned.
template <typename S>
class Target {
public:
    Target(FunctionCallInfo fcinfo, bool with_tiebreak)
    {
        MemoryContext aggcontext = nullptr;
        bool in_aggregate = AggCheckCallContext(fcinfo, &aggcontext) != 0;
        if (in_aggregate && !PG_ARGISNULL(0)) {
            StateObject* object = expanded_of<S>(PG_GETARG_DATUM(0));
            if (object != nullptr && MemoryContextGetParent(object->header.eoh_context) == aggcontext) {
                object_ = object;
                state_ = &state_of<S>(&object->header);
                return;
            }
        }
        if (in_aggregate) {
            object_ = new_state_object<S>(aggcontext, with_tiebreak);
            state_ = &state_of<S>(&object_->header);
        } else {
            temp_memory_.emplace(CurrentMemoryContext);
            temp_state_.emplace(new_state<S>(with_tiebreak, &*temp_memory_));
            state_ = &*temp_state_;
        }
        // A flat state (the first input of a combine, a state from a table),
        // or an expanded one that is not ours to change: copy it in.
        if (!PG_ARGISNULL(0)) {
            Datum datum = PG_GETARG_DATUM(0);
            if (StateObject* other = expanded_of<S>(datum))
                state_->merge(state_of<S>(&other->header));
            else
                state_->parse(state_bytes(datum));
        }
    }
    Target(const Target&) = delete;
    Target& operator=(const Target&) = delete;

    S& state() { return *state_; }

    Datum result()
    {
        if (object_ != nullptr)
            return EOHPGetRWDatum(&object_->header);
        return flat_datum(*state_);
    }

private:
    StateObject* object_ = nullptr;
    S* state_ = nullptr;
    std::optional<ContextResource> temp_memory_;
    std::optional<S> temp_state_;
};

// A state argument read, not changed: an expanded object as it is, or a flat
// state parsed into a temporary in the call's memory context.
template <typename S>
class Reader {
public:
    explicit Reader(Datum datum)
    {
        if (StateObject* object = expanded_of<S>(datum)) {
            state_ = &state_of<S>(&object->header);
            return;
        }
        std::string_view bytes = state_bytes(datum);
        agg::StateHeader header = agg::read_state_header(bytes);
        temp_memory_.emplace(CurrentMemoryContext);
        temp_state_.emplace(new_state<S>(header.with_tiebreak, &*temp_memory_));
        temp_state_->parse(bytes);
        state_ = &*temp_state_;
    }
    Reader(const Reader&) = delete;
    Reader& operator=(const Reader&) = delete;

    const S& state() const { return *state_; }

private:
    const S* state_ = nullptr;
    std::optional<ContextResource> temp_memory_;
    std::optional<S> temp_state_;
};

template <typename S>
Datum combine(FunctionCallInfo fcinfo)
{
    // STRICT: both states are there.
    Reader<S> other(PG_GETARG_DATUM(1));
    Target<S> target(fcinfo, with_tiebreak_of(other.state()));
    target.state().merge(other.state());
    return target.result();
}

// --- latest (a flat state, see the top) ------------------------------------------

Datum latest_trans(FunctionCallInfo fcinfo)
{
    const bool with_tiebreak = PG_NARGS() == 4;
    if (PG_ARGISNULL(1) || PG_ARGISNULL(2))
        return unchanged_state(fcinfo);
    std::int64_t tiebreak = tiebreak_arg(fcinfo, 3, with_tiebreak);
    Numeric number = finite_numeric_arg(fcinfo, 1, "value");
    TimestampTz at = PG_GETARG_TIMESTAMPTZ(2);
    agg::Key key{at, tiebreak};

    struct varlena* flat = nullptr;
    std::string_view bytes;
    if (!PG_ARGISNULL(0)) {
        bytes = state_bytes(PG_GETARG_DATUM(0), &flat);
        std::optional<agg::Key> held = agg::LatestState::peek_key(bytes, with_tiebreak);
        if (held && key < *held && at != DT_NOBEGIN && at != DT_NOEND)
            return PG_GETARG_DATUM(0);  // an older row: nothing to decode, nothing to copy
    }
    core::Decimal value = to_decimal(number);
    ContextResource memory(CurrentMemoryContext);
    agg::LatestState state(with_tiebreak, &memory);
    if (!PG_ARGISNULL(0))
        state.parse(bytes);
    if (!state.add(value, at, tiebreak))
        return PG_GETARG_DATUM(0);

    // Over the old state when it fits and is the aggregate's own (in place,
    // as int8_avg_accum does); else a new value, which nodeAgg copies.
    std::size_t size = checked_varlena_size(state.serialized_size());
    MemoryContext aggcontext;
    if (flat != nullptr && AggCheckCallContext(fcinfo, &aggcontext) != 0 &&
        flat == reinterpret_cast<struct varlena*>(DatumGetPointer(PG_GETARG_DATUM(0))) &&
        VARATT_IS_4B_U(flat) && VARSIZE(flat) >= size) {
        state.serialize_into(VARDATA(flat), size - VARHDRSZ);
        SET_VARSIZE(flat, size);
        return PG_GETARG_DATUM(0);
    }
    return flat_datum(state);
}

Datum latest_combine(FunctionCallInfo fcinfo)
{
    struct varlena* flat0 = nullptr;
    struct varlena* flat1 = nullptr;
    std::string_view bytes0 = state_bytes(PG_GETARG_DATUM(0), &flat0);
    std::string_view bytes1 = state_bytes(PG_GETARG_DATUM(1), &flat1);
    bool with_tiebreak = agg::read_state_header(bytes1).with_tiebreak;
    ContextResource memory(CurrentMemoryContext);
    agg::LatestState a(with_tiebreak, &memory);
    agg::LatestState b(with_tiebreak, &memory);
    a.parse(bytes0);
    b.parse(bytes1);
    // One of the inputs is the result; nodeAgg copies it when it is not its own.
    return PointerGetDatum(a.merge(b) ? flat1 : flat0);
}

Datum latest_final(FunctionCallInfo fcinfo)
{
    std::string_view bytes = state_bytes(PG_GETARG_DATUM(0));
    ContextResource memory(CurrentMemoryContext);
    agg::LatestState state(agg::read_state_header(bytes).with_tiebreak, &memory);
    state.parse(bytes);
    if (state.empty())
        return null_datum(fcinfo);
    return numeric_datum(state.value());
}

// --- the usage-line aggregate (internal state) -----------------------------------
//
// metering._line_quantity(kind, value, text_value, at, tiebreak, op) is what
// metering.invoice_lines computes per line, for every kind but custom and
// time_weighted: count (1), sum (2), max (3), min (4), unique_count (5),
// latest (6), counter (7). One aggregate, whichever the line's kind, so that
// a hash aggregation over tens of thousands of lines keeps one small state
// per line and stays within work_mem. Its state is `internal`, allocated
// straight in the aggregate's memory context (as array_agg does), not an
// expanded object in a context of its own (a 1 KB context per line would
// make the aggregation spill). The states and rules are the core's: the
// ScalarState of count/sum/max/min (exact; values read straight from
// numeric's storage format while they fit in 18 digits), and the states of
// metering.unique_count, metering.latest and metering.counter_total.
enum class LineKind : std::int32_t {
    count = 1, sum = 2, max = 3, min = 4, unique_count = 5, latest = 6, counter = 7
};

// A numeric datum as a FixedValue, read from Postgres's storage format of
// numeric (NumericShort and NumericLong in src/backend/utils/adt/numeric.c;
// an on-disk format, the same in every version pg_upgrade supports), without
// the text conversion; nullopt for NaN, the infinities and anything that does
// not fit 18 digits (those take the Decimal path).
std::optional<agg::FixedValue> fixed_of(Datum datum)
{
    const struct varlena* v = pg_safe([&] { return PG_DETOAST_DATUM_PACKED(datum); });
    const char* data = VARDATA_ANY(v);
    std::size_t size = VARSIZE_ANY_EXHDR(v);
    std::uint16_t header = 0;
    if (size < sizeof header)
        return std::nullopt;
    std::memcpy(&header, data, sizeof header);
    bool negative = false;
    int weight = 0;
    int dscale = 0;
    std::size_t offset = 0;
    switch (header & 0xC000) {
    case 0x8000:  // short: sign 0x2000, dscale 0x1F80 >> 7, weight 0x003F with sign 0x0040
        negative = (header & 0x2000) != 0;
        dscale = (header & 0x1F80) >> 7;
        weight = (header & 0x0040) ? (-64 | (header & 0x003F)) : (header & 0x003F);
        offset = 2;
        break;
    case 0x0000:
    case 0x4000: {  // long: sign and dscale (0x3FFF), then an int16 weight
        std::int16_t w = 0;
        if (size < 4)
            return std::nullopt;
        std::memcpy(&w, data + 2, sizeof w);
        negative = (header & 0xC000) == 0x4000;
        dscale = header & 0x3FFF;
        weight = w;
        offset = 4;
        break;
    }
    default:  // NaN, Infinity, -Infinity
        return std::nullopt;
    }
    std::int16_t digits[8];
    std::size_t ndigits = (size - offset) / sizeof(std::int16_t);
    if (ndigits > 8)
        return std::nullopt;
    std::memcpy(digits, data + offset, ndigits * sizeof(std::int16_t));
    return agg::fixed_from_base10000(negative, weight, dscale, digits, int(ndigits));
}

// The header of a line's state; the core state of its kind follows it in the
// same allocation.
struct LineState {
    ContextResource memory;
    LineKind kind;

    LineState(MemoryContext context, LineKind k) : memory(context), kind(k) {}

    static constexpr std::size_t kStateOffset = MAXALIGN(sizeof(ContextResource) + sizeof(LineKind));
    template <typename S>
    S& as() { return *reinterpret_cast<S*>(reinterpret_cast<char*>(this) + kStateOffset); }
    template <typename S>
    const S& as() const { return *reinterpret_cast<const S*>(reinterpret_cast<const char*>(this) + kStateOffset); }
};

template <typename S>
struct StateType {
    using type = S;
};

// Calls f(StateType<S>{}) with S the core state of kind.
template <typename F>
decltype(auto) with_state_type(LineKind kind, F&& f)
{
    switch (kind) {
    case LineKind::unique_count:
        return f(StateType<agg::UniqueCountState>{});
    case LineKind::latest:
        return f(StateType<agg::LatestState>{});
    case LineKind::counter:
        return f(StateType<agg::CounterState>{});
    default:  // count, sum, max, min
        return f(StateType<agg::ScalarState>{});
    }
}

LineKind line_kind(std::int32_t k)
{
    if (k < 1 || k > 7)
        throw core::Error(core::sqlstate::kInvalidParameter,
                          "line kind " + std::to_string(k) + " is not 1 to 7");
    return static_cast<LineKind>(k);
}

// A new empty state of kind k in context. Nothing here is ever destroyed:
// every byte, the containers' included, goes with the context.
LineState* new_line_state(MemoryContext context, LineKind kind)
{
    static_assert(alignof(LineState) <= MAXIMUM_ALIGNOF && alignof(agg::ScalarState) <= MAXIMUM_ALIGNOF &&
                      alignof(agg::UniqueCountState) <= MAXIMUM_ALIGNOF &&
                      alignof(agg::LatestState) <= MAXIMUM_ALIGNOF &&
                      alignof(agg::CounterState) <= MAXIMUM_ALIGNOF,
                  "palloc aligns to MAXIMUM_ALIGNOF");
    static_assert(sizeof(LineState) <= LineState::kStateOffset, "the state follows the header");
    return with_state_type(kind, [&](auto type) {
        using S = typename decltype(type)::type;
        auto* memory = static_cast<char*>(
            pg_safe([&] { return MemoryContextAlloc(context, LineState::kStateOffset + sizeof(S)); }));
        auto* line = new (memory) LineState(context, kind);
        void* at = memory + LineState::kStateOffset;
        if constexpr (std::is_same_v<S, agg::ScalarState>)
            new (at) S(static_cast<agg::ScalarKind>(kind), &line->memory);
        else if constexpr (std::is_same_v<S, agg::UniqueCountState>)
            new (at) S(&line->memory);
        else
            new (at) S(true, &line->memory);  // latest and counter, with the event id as tiebreak
        return line;
    });
}

void merge_line(LineState& into, const LineState& other)
{
    if (into.kind != other.kind)
        throw core::Error(core::sqlstate::kInvalidParameter, "line states of different kinds");
    with_state_type(into.kind, [&](auto type) {
        using S = typename decltype(type)::type;
        into.as<S>().merge(other.as<S>());
    });
}

MemoryContext line_aggregate_context(FunctionCallInfo fcinfo)
{
    MemoryContext aggcontext = nullptr;
    if (AggCheckCallContext(fcinfo, &aggcontext) == 0)
        throw core::Error(core::sqlstate::kInvalidParameter,
                          "metering._line_quantity is called outside an aggregate");
    return aggcontext;
}

Datum line_trans(FunctionCallInfo fcinfo)
{
    MemoryContext aggcontext = line_aggregate_context(fcinfo);
    if (PG_ARGISNULL(1))
        return unchanged_state(fcinfo);
    LineKind kind = line_kind(PG_GETARG_INT32(1));
    auto* line = PG_ARGISNULL(0) ? nullptr : reinterpret_cast<LineState*>(PG_GETARG_POINTER(0));
    if (line != nullptr && line->kind != kind)
        throw core::Error(core::sqlstate::kInvalidParameter, "a line's kind changed between rows");
    // A row that does not count leaves no state.
    switch (kind) {
    case LineKind::count:
        if (line == nullptr)
            line = new_line_state(aggcontext, kind);
        line->as<agg::ScalarState>().add_row();
        break;
    case LineKind::sum:
    case LineKind::max:
    case LineKind::min: {
        if (PG_ARGISNULL(2))
            return unchanged_state(fcinfo);
        std::optional<agg::FixedValue> fixed = fixed_of(PG_GETARG_DATUM(2));
        std::optional<core::Decimal> wide;
        if (!fixed)
            wide = decimal_arg(fcinfo, 2, "value");
        if (line == nullptr)
            line = new_line_state(aggcontext, kind);
        if (fixed)
            line->as<agg::ScalarState>().add(*fixed);
        else
            line->as<agg::ScalarState>().add(*wide);
        break;
    }
    case LineKind::unique_count: {
        if (PG_ARGISNULL(3))
            return unchanged_state(fcinfo);
        std::string_view value = text_arg(fcinfo, 3);
        if (line == nullptr)
            line = new_line_state(aggcontext, kind);
        line->as<agg::UniqueCountState>().add(value);
        break;
    }
    case LineKind::latest: {
        if (PG_ARGISNULL(2) || PG_ARGISNULL(4))
            return unchanged_state(fcinfo);
        std::int64_t tiebreak = tiebreak_arg(fcinfo, 5, true);
        core::Decimal value = decimal_arg(fcinfo, 2, "value");
        if (line == nullptr)
            line = new_line_state(aggcontext, kind);
        line->as<agg::LatestState>().add(value, PG_GETARG_TIMESTAMPTZ(4), tiebreak);
        break;
    }
    case LineKind::counter: {
        auto op = agg::CounterOp::increment;
        if (!PG_ARGISNULL(6))
            op = agg::parse_counter_op(text_arg(fcinfo, 6));
        if (PG_ARGISNULL(2) || PG_ARGISNULL(4))
            return unchanged_state(fcinfo);
        std::int64_t tiebreak = tiebreak_arg(fcinfo, 5, true);
        core::Decimal value = decimal_arg(fcinfo, 2, "value");
        if (line == nullptr)
            line = new_line_state(aggcontext, kind);
        line->as<agg::CounterState>().add(op, value, PG_GETARG_TIMESTAMPTZ(4), tiebreak);
        break;
    }
    }
    PG_RETURN_POINTER(line);
}

Datum line_combine(FunctionCallInfo fcinfo)
{
    MemoryContext aggcontext = line_aggregate_context(fcinfo);
    if (PG_ARGISNULL(1))
        return unchanged_state(fcinfo);
    const auto* other = reinterpret_cast<const LineState*>(PG_GETARG_POINTER(1));
    auto* line = PG_ARGISNULL(0) ? new_line_state(aggcontext, other->kind)
                                 : reinterpret_cast<LineState*>(PG_GETARG_POINTER(0));
    merge_line(*line, *other);
    PG_RETURN_POINTER(line);
}

// bytea: the kind (1 byte), then the core's serialized state.
std::string serialized_line(LineState& line)
{
    std::string bytes(1, char(static_cast<std::int32_t>(line.kind)));
    with_state_type(line.kind, [&](auto type) { bytes += line.as<typename decltype(type)::type>().serialized(); });
    return bytes;
}

LineState* parsed_line(std::string_view bytes, MemoryContext context)
{
    if (bytes.empty())
        throw core::Error(core::sqlstate::kInvalidBinaryRepresentation, "empty line state");
    LineState* line = new_line_state(context, line_kind(static_cast<unsigned char>(bytes[0])));
    bytes.remove_prefix(1);
    with_state_type(line->kind, [&](auto type) { line->as<typename decltype(type)::type>().parse(bytes); });
    return line;
}

Datum line_serialize(FunctionCallInfo fcinfo)
{
    line_aggregate_context(fcinfo);
    return bytes_datum(serialized_line(*reinterpret_cast<LineState*>(PG_GETARG_POINTER(0))));
}

Datum line_deserialize(FunctionCallInfo fcinfo)
{
    line_aggregate_context(fcinfo);
    PG_RETURN_POINTER(parsed_line(state_bytes(PG_GETARG_DATUM(0)), CurrentMemoryContext));
}

// Transition of the aggregates over serialized line states (the rollups):
// each row's state is merged into the group's.
Datum line_merge_trans(FunctionCallInfo fcinfo)
{
    MemoryContext aggcontext = line_aggregate_context(fcinfo);
    if (PG_ARGISNULL(1))
        return unchanged_state(fcinfo);
    LineState* other = parsed_line(state_bytes(PG_GETARG_DATUM(1)), aggcontext);
    if (PG_ARGISNULL(0))
        PG_RETURN_POINTER(other);
    auto* line = reinterpret_cast<LineState*>(PG_GETARG_POINTER(0));
    merge_line(*line, *other);
    PG_RETURN_POINTER(line);
}

// count: the rows; sum, max, min: the value (NULL without one, as Postgres's);
// unique_count: the number of values; latest: the value (NULL without one);
// counter: the total. NULL when no row counted.
Datum line_quantity(FunctionCallInfo fcinfo, const LineState* line)
{
    switch (line->kind) {
    case LineKind::count:
    case LineKind::sum:
    case LineKind::max:
    case LineKind::min: {
        std::optional<core::Decimal> value = line->as<agg::ScalarState>().result();
        return value ? numeric_datum(*value) : null_datum(fcinfo);
    }
    case LineKind::unique_count:
        return numeric_datum(core::Decimal::from_int(std::int64_t(line->as<agg::UniqueCountState>().count())));
    case LineKind::latest:
        if (line->as<agg::LatestState>().empty())
            return null_datum(fcinfo);
        return numeric_datum(line->as<agg::LatestState>().value());
    case LineKind::counter:
        return numeric_datum(line->as<agg::CounterState>().total());
    }
    return null_datum(fcinfo);
}

Datum line_final(FunctionCallInfo fcinfo)
{
    if (PG_ARGISNULL(0))
        return null_datum(fcinfo);
    return line_quantity(fcinfo, reinterpret_cast<const LineState*>(PG_GETARG_POINTER(0)));
}

}  // namespace

extern "C" {

// --- metering.aggregate_state ---------------------------------------------------------

PG_FUNCTION_INFO_V1(metering_aggregate_state_in);
Datum metering_aggregate_state_in(PG_FUNCTION_ARGS)
{
    return guarded([&]() -> Datum {
        ContextResource memory(CurrentMemoryContext);
        return bytes_datum(agg::state_from_text(PG_GETARG_CSTRING(0), &memory));
    });
}

PG_FUNCTION_INFO_V1(metering_aggregate_state_out);
Datum metering_aggregate_state_out(PG_FUNCTION_ARGS)
{
    return guarded([&]() -> Datum {
        std::string_view bytes = state_bytes(PG_GETARG_DATUM(0));
        static const char digits[] = "0123456789abcdef";
        auto* out = static_cast<char*>(pg_safe([&] { return palloc(2 * bytes.size() + 3); }));
        out[0] = '\\';
        out[1] = 'x';
        for (std::size_t i = 0; i < bytes.size(); ++i) {
            auto byte = static_cast<unsigned char>(bytes[i]);
            out[2 + 2 * i] = digits[byte >> 4];
            out[3 + 2 * i] = digits[byte & 0x0F];
            if (i % (1 << 20) == 0)
                agg::check_interrupts();
        }
        out[2 + 2 * bytes.size()] = '\0';
        PG_RETURN_CSTRING(out);
    });
}

PG_FUNCTION_INFO_V1(metering_aggregate_state_recv);
Datum metering_aggregate_state_recv(PG_FUNCTION_ARGS)
{
    return guarded([&]() -> Datum {
        auto* buffer = reinterpret_cast<StringInfo>(PG_GETARG_POINTER(0));
        std::string_view bytes(buffer->data + buffer->cursor,
                               std::size_t(buffer->len - buffer->cursor));
        ContextResource memory(CurrentMemoryContext);
        agg::validate_state(bytes, &memory);
        Datum result = bytes_datum(bytes);
        buffer->cursor = buffer->len;
        return result;
    });
}

PG_FUNCTION_INFO_V1(metering_aggregate_state_send);
Datum metering_aggregate_state_send(PG_FUNCTION_ARGS)
{
    return guarded([&]() -> Datum { return bytes_datum(state_bytes(PG_GETARG_DATUM(0))); });
}

// --- latest -----------------------------------------------------------------------------

PG_FUNCTION_INFO_V1(metering_latest_trans);
Datum metering_latest_trans(PG_FUNCTION_ARGS)
{
    return guarded([&] { return latest_trans(fcinfo); });
}

PG_FUNCTION_INFO_V1(metering_latest_combine);
Datum metering_latest_combine(PG_FUNCTION_ARGS)
{
    return guarded([&] { return latest_combine(fcinfo); });
}

PG_FUNCTION_INFO_V1(metering_latest_final);
Datum metering_latest_final(PG_FUNCTION_ARGS)
{
    return guarded([&] { return latest_final(fcinfo); });
}

// --- unique_count ---------------------------------------------------------------------------

PG_FUNCTION_INFO_V1(metering_unique_count_trans);
Datum metering_unique_count_trans(PG_FUNCTION_ARGS)
{
    return guarded([&]() -> Datum {
        if (PG_ARGISNULL(1))
            return unchanged_state(fcinfo);
        std::string_view value = text_arg(fcinfo, 1);
        Target<agg::UniqueCountState> target(fcinfo, false);
        target.state().add(value);
        return target.result();
    });
}

PG_FUNCTION_INFO_V1(metering_unique_count_combine);
Datum metering_unique_count_combine(PG_FUNCTION_ARGS)
{
    return guarded([&] { return combine<agg::UniqueCountState>(fcinfo); });
}

PG_FUNCTION_INFO_V1(metering_unique_count_final);
Datum metering_unique_count_final(PG_FUNCTION_ARGS)
{
    return guarded([&]() -> Datum {
        if (PG_ARGISNULL(0))
            PG_RETURN_INT64(0);
        Reader<agg::UniqueCountState> state(PG_GETARG_DATUM(0));
        PG_RETURN_INT64(std::int64_t(state.state().count()));
    });
}

// --- counter_total ---------------------------------------------------------------------------

PG_FUNCTION_INFO_V1(metering_counter_total_trans);
Datum metering_counter_total_trans(PG_FUNCTION_ARGS)
{
    return guarded([&]() -> Datum {
        const bool with_tiebreak = PG_NARGS() == 5;
        auto op = agg::CounterOp::increment;  // NULL op: an increment
        if (!PG_ARGISNULL(1))
            op = agg::parse_counter_op(text_arg(fcinfo, 1));
        if (PG_ARGISNULL(2) || PG_ARGISNULL(3))
            return unchanged_state(fcinfo);
        std::int64_t tiebreak = tiebreak_arg(fcinfo, 4, with_tiebreak);
        core::Decimal value = decimal_arg(fcinfo, 2, "value");
        Target<agg::CounterState> target(fcinfo, with_tiebreak);
        target.state().add(op, value, PG_GETARG_TIMESTAMPTZ(3), tiebreak);
        return target.result();
    });
}

PG_FUNCTION_INFO_V1(metering_counter_total_combine);
Datum metering_counter_total_combine(PG_FUNCTION_ARGS)
{
    return guarded([&] { return combine<agg::CounterState>(fcinfo); });
}

PG_FUNCTION_INFO_V1(metering_counter_total_final);
Datum metering_counter_total_final(PG_FUNCTION_ARGS)
{
    return guarded([&]() -> Datum {
        if (PG_ARGISNULL(0))
            return numeric_datum(core::Decimal());
        Reader<agg::CounterState> state(PG_GETARG_DATUM(0));
        return numeric_datum(state.state().total());
    });
}

// --- time_weighted ---------------------------------------------------------------------------

PG_FUNCTION_INFO_V1(metering_time_weighted_trans);
Datum metering_time_weighted_trans(PG_FUNCTION_ARGS)
{
    return guarded([&]() -> Datum {
        const bool with_tiebreak = PG_NARGS() == 6;
        if (PG_ARGISNULL(3))
            core::throw_null_argument("period_start");
        if (PG_ARGISNULL(4))
            core::throw_null_argument("period_end");
        const bool counted = !PG_ARGISNULL(1) && !PG_ARGISNULL(2);
        std::int64_t tiebreak = counted ? tiebreak_arg(fcinfo, 5, with_tiebreak) : 0;
        std::optional<core::Decimal> value;
        if (counted)
            value = decimal_arg(fcinfo, 1, "value");
        Target<agg::TimeWeightedState> target(fcinfo, with_tiebreak);
        // Even a row that does not count checks (and records) the period.
        target.state().set_period(PG_GETARG_TIMESTAMPTZ(3), PG_GETARG_TIMESTAMPTZ(4));
        if (counted)
            target.state().add(*value, PG_GETARG_TIMESTAMPTZ(2), tiebreak);
        return target.result();
    });
}

PG_FUNCTION_INFO_V1(metering_time_weighted_combine);
Datum metering_time_weighted_combine(PG_FUNCTION_ARGS)
{
    return guarded([&] { return combine<agg::TimeWeightedState>(fcinfo); });
}

PG_FUNCTION_INFO_V1(metering_time_weighted_final);
Datum metering_time_weighted_final(PG_FUNCTION_ARGS)
{
    return guarded([&]() -> Datum {
        if (PG_ARGISNULL(0))
            return numeric_datum(core::Decimal());
        Reader<agg::TimeWeightedState> state(PG_GETARG_DATUM(0));
        return numeric_datum(state.state().value_hours());
    });
}

// --- metering._line_quantity ------------------------------------------------------------

PG_FUNCTION_INFO_V1(metering_line_quantity_trans);
Datum metering_line_quantity_trans(PG_FUNCTION_ARGS)
{
    return guarded([&] { return line_trans(fcinfo); });
}

PG_FUNCTION_INFO_V1(metering_line_quantity_combine);
Datum metering_line_quantity_combine(PG_FUNCTION_ARGS)
{
    return guarded([&] { return line_combine(fcinfo); });
}

PG_FUNCTION_INFO_V1(metering_line_quantity_serialize);
Datum metering_line_quantity_serialize(PG_FUNCTION_ARGS)
{
    return guarded([&] { return line_serialize(fcinfo); });
}

PG_FUNCTION_INFO_V1(metering_line_quantity_deserialize);
Datum metering_line_quantity_deserialize(PG_FUNCTION_ARGS)
{
    return guarded([&] { return line_deserialize(fcinfo); });
}

PG_FUNCTION_INFO_V1(metering_line_quantity_final);
Datum metering_line_quantity_final(PG_FUNCTION_ARGS)
{
    return guarded([&] { return line_final(fcinfo); });
}

// --- serialized line states: the rollups (metering.usage_rollups.state) -----------------

PG_FUNCTION_INFO_V1(metering_line_state_merge_trans);
Datum metering_line_state_merge_trans(PG_FUNCTION_ARGS)
{
    return guarded([&] { return line_merge_trans(fcinfo); });
}

// metering._state_quantity(state bytea) -> numeric: the quantity of a serialized line state.
PG_FUNCTION_INFO_V1(metering_line_state_quantity);
Datum metering_line_state_quantity(PG_FUNCTION_ARGS)
{
    return guarded([&] {
        return line_quantity(fcinfo, parsed_line(state_bytes(PG_GETARG_DATUM(0)), CurrentMemoryContext));
    });
}

// metering._state_merge(a bytea, b bytea) -> bytea: two serialized line states of one
// line as one (NULL is the empty state).
PG_FUNCTION_INFO_V1(metering_line_state_merge);
Datum metering_line_state_merge(PG_FUNCTION_ARGS)
{
    return guarded([&]() -> Datum {
        if (PG_ARGISNULL(0) || PG_ARGISNULL(1)) {
            if (PG_ARGISNULL(0) && PG_ARGISNULL(1))
                return null_datum(fcinfo);
            return PG_ARGISNULL(0) ? PG_GETARG_DATUM(1) : PG_GETARG_DATUM(0);
        }
        LineState* a = parsed_line(state_bytes(PG_GETARG_DATUM(0)), CurrentMemoryContext);
        LineState* b = parsed_line(state_bytes(PG_GETARG_DATUM(1)), CurrentMemoryContext);
        merge_line(*a, *b);
        return bytes_datum(serialized_line(*a));
    });
}

}  // extern "C"
