// The syntax and range rules of numeric_in (src/backend/utils/adt/numeric.c,
// PostgreSQL 15) and an ISO 8601 subset of timestamptz_in (see input_syntax.hpp).
#include "core/input_syntax.hpp"

#include <array>
#include <cstdint>

namespace metering::core {

namespace {

// isspace() in the C locale, which Postgres uses for these inputs.
bool is_blank(char c)
{
    return c == ' ' || c == '\t' || c == '\n' || c == '\v' || c == '\f' || c == '\r';
}

bool is_digit(char c) { return c >= '0' && c <= '9'; }

char lower(char c) { return c >= 'A' && c <= 'Z' ? static_cast<char>(c - 'A' + 'a') : c; }

// A cursor over the text.
struct Cursor {
    std::string_view text;
    std::size_t at = 0;

    bool done() const { return at == text.size(); }
    char peek() const { return done() ? '\0' : text[at]; }
    bool take(char c)
    {
        if (peek() != c)
            return false;
        ++at;
        return true;
    }
    void skip_blanks()
    {
        while (!done() && is_blank(text[at]))
            ++at;
    }
    // Case-insensitive prefix, as pg_strncasecmp compares.
    bool take_word(std::string_view word)
    {
        if (text.size() - at < word.size())
            return false;
        for (std::size_t i = 0; i < word.size(); ++i)
            if (lower(text[at + i]) != word[i])
                return false;
        at += word.size();
        return true;
    }
    // Exactly n digits as a number; -1 when they are not there.
    int fixed_digits(int n)
    {
        if (text.size() - at < static_cast<std::size_t>(n))
            return -1;
        int value = 0;
        for (int i = 0; i < n; ++i) {
            if (!is_digit(text[at + i]))
                return -1;
            value = value * 10 + (text[at + i] - '0');
        }
        at += n;
        return value;
    }
    bool only_blanks_left() const
    {
        for (std::size_t i = at; i < text.size(); ++i)
            if (!is_blank(text[i]))
                return false;
        return true;
    }
};

// --- numeric ------------------------------------------------------------------

// numeric's limits: NUMERIC_DSCALE_MAX digits after the point, and an int16
// weight in base-10,000 digits (NUMERIC_WEIGHT_MAX = 32767, so the leading
// digit's decimal exponent is at most 4 * 32768 - 1).
constexpr std::int64_t kMaxScale = 0x3FFF;
constexpr std::int64_t kMaxLeadingExponent = 4 * 32768 - 1;
// set_var_from_str refuses exponents from INT_MAX / 2 on, either sign.
constexpr std::int64_t kMaxExponent = 2147483647 / 2;

// The exponent after 'e', read as strtol reads it (blanks, a sign, digits);
// false when there are no digits or it is out of range.
bool exponent(Cursor& c, std::int64_t* out)
{
    c.skip_blanks();
    const bool negative = c.take('-');
    if (!negative)
        c.take('+');
    if (!is_digit(c.peek()))
        return false;
    std::int64_t value = 0;
    while (is_digit(c.peek())) {
        if (value <= kMaxExponent)  // saturate: anything larger is refused below
            value = value * 10 + (c.peek() - '0');
        ++c.at;
    }
    if (value >= kMaxExponent)
        return false;
    *out = negative ? -value : value;
    return true;
}

bool decimal_number(Cursor& c)
{
    if (!c.take('+'))
        c.take('-');
    bool point = c.take('.');
    if (!is_digit(c.peek()))
        return false;
    std::int64_t int_digits = 0;
    std::int64_t frac_digits = 0;
    std::int64_t first_nonzero = -1;  // index among all digits
    for (;; ++c.at) {
        const char ch = c.peek();
        if (is_digit(ch)) {
            if (first_nonzero < 0 && ch != '0')
                first_nonzero = int_digits + frac_digits;
            (point ? frac_digits : int_digits)++;
        } else if (ch == '.') {
            if (point)
                return false;
            point = true;
        } else {
            break;
        }
    }
    std::int64_t exp = 0;
    if ((c.take('e') || c.take('E')) && !exponent(c, &exp))
        return false;
    if (!c.only_blanks_left())
        return false;
    const std::int64_t scale = frac_digits - exp > 0 ? frac_digits - exp : 0;
    if (scale > kMaxScale)
        return false;
    return first_nonzero < 0 || int_digits - 1 - first_nonzero + exp <= kMaxLeadingExponent;
}

// --- timestamps ---------------------------------------------------------------

constexpr std::size_t kMaxTimestampLength = 64;

bool leap_year(int year) { return year % 4 == 0 && (year % 100 != 0 || year % 400 == 0); }

int days_in_month(int year, int month)
{
    constexpr std::array<int, 12> kDays{31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    return month == 2 && leap_year(year) ? 29 : kDays[month - 1];
}

bool date(Cursor& c)
{
    const int year = c.fixed_digits(4);
    if (year < 1 || !c.take('-'))
        return false;
    const int month = c.fixed_digits(2);
    if (month < 1 || month > 12 || !c.take('-'))
        return false;
    const int day = c.fixed_digits(2);
    return day >= 1 && day <= days_in_month(year, month);
}

// hh:mm[:ss[.fraction]], at most 24:00:00 (the end of the day).
bool time_of_day(Cursor& c)
{
    const int hour = c.fixed_digits(2);
    if (hour < 0 || hour > 24 || !c.take(':'))
        return false;
    const int minute = c.fixed_digits(2);
    if (minute < 0 || minute > 59)
        return false;
    int second = 0;
    bool fraction_zero = true;
    if (c.take(':')) {
        second = c.fixed_digits(2);
        if (second < 0 || second > 60)
            return false;
        if (c.take('.')) {
            if (!is_digit(c.peek()))
                return false;
            for (; is_digit(c.peek()); ++c.at)
                fraction_zero = fraction_zero && c.peek() == '0';
        }
    }
    // As time_overflows(): seconds may be 60, but the time is at most 24:00:00.
    const int seconds_of_day = (hour * 60 + minute) * 60 + second;
    return seconds_of_day < 24 * 3600 || (seconds_of_day == 24 * 3600 && fraction_zero);
}

// Z, +hh, +hhmm, +hh:mm or +hh:mm:ss (or -); DecodeTimezone takes hours up to 15.
bool utc_offset(Cursor& c)
{
    if (c.take('Z') || c.take('z'))
        return true;
    if (!c.take('+') && !c.take('-'))
        return false;
    const int hours = c.fixed_digits(2);
    if (hours < 0 || hours > 15)
        return false;
    if (c.only_blanks_left())  // +hh, and the blanks the text may end with
        return true;
    const bool colon = c.take(':');
    const int minutes = c.fixed_digits(2);
    if (minutes < 0 || minutes > 59)
        return false;
    if (colon && c.take(':')) {
        const int seconds = c.fixed_digits(2);
        return seconds >= 0 && seconds <= 59;
    }
    return true;
}

}  // namespace

bool is_numeric_text(std::string_view text)
{
    Cursor c{text};
    c.skip_blanks();
    // numeric_in's order: the longer words first.
    for (std::string_view word : {"nan", "infinity", "+infinity", "-infinity", "inf", "+inf", "-inf"})
        if (c.take_word(word))
            return c.only_blanks_left();
    return decimal_number(c);
}

bool is_iso_timestamp_text(std::string_view text)
{
    if (text.size() > kMaxTimestampLength)
        return false;
    Cursor c{text};
    c.skip_blanks();
    if (!date(c))
        return false;
    if (c.only_blanks_left())
        return true;
    if (!c.take('T') && !c.take('t') && !c.take(' '))
        return false;
    if (!time_of_day(c))
        return false;
    if (c.only_blanks_left())
        return true;
    return utc_offset(c) && c.only_blanks_left();
}

}  // namespace metering::core
