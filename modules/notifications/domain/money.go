package notificationsdomain

import (
	"strconv"
	"strings"
)

// minorUnits lists the ISO 4217 currencies whose minor unit is not the usual two digits.
var minorUnits = map[string]int{
	"BIF": 0, "CLP": 0, "DJF": 0, "GNF": 0, "ISK": 0, "JPY": 0, "KMF": 0, "KRW": 0, "PYG": 0, "RWF": 0,
	"UGX": 0, "UYI": 0, "VND": 0, "VUV": 0, "XAF": 0, "XOF": 0, "XPF": 0,
	"BHD": 3, "IQD": 3, "JOD": 3, "KWD": 3, "LYD": 3, "OMR": 3, "TND": 3,
	"CLF": 4, "UYW": 4,
}

// MinorUnits returns how many decimal digits currency's minor unit has (2 unless ISO 4217 says otherwise).
func MinorUnits(currency string) int {
	if n, ok := minorUnits[strings.ToUpper(currency)]; ok {
		return n
	}
	return 2
}

// FormatMoney renders an amount in minor units for people, e.g. 1250 "EUR" -> "12.50 EUR", 500 "JPY" ->
// "500 JPY", 1234 "BHD" -> "1.234 BHD".
func FormatMoney(amountMinor int64, currency string) string {
	currency = strings.ToUpper(currency)
	sign := ""
	abs := uint64(amountMinor)
	if amountMinor < 0 {
		sign = "-"
		abs = -abs
	}
	digits := strconv.FormatUint(abs, 10)
	units := MinorUnits(currency)
	if units == 0 {
		return sign + digits + " " + currency
	}
	if len(digits) <= units {
		digits = strings.Repeat("0", units-len(digits)+1) + digits
	}
	cut := len(digits) - units
	return sign + digits[:cut] + "." + digits[cut:] + " " + currency
}
