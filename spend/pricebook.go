package spend

import (
	"time"

	"github.com/tollgate-dev/tollgate/config"
	"github.com/tollgate-dev/tollgate/translate"
)

// DefaultMaxOutputTokens bounds a response when neither the deployment's model_info nor
// the price table states the model's limit: the reservation of a request that sets no
// max_tokens assumes this many output tokens.
const DefaultMaxOutputTokens = 8192

// Pricebook is every deployment's price, resolved once when the config loads, so pricing
// a request is a map read and integer arithmetic.
type Pricebook struct {
	prices map[string]deploymentPrice
}

type deploymentPrice struct {
	price   Price
	offPeak Price // price at its off-peak rates, when it has them
	known   bool
	maxOut  int
}

// NewPricebook prices each deployment of cfg from p (see ForDeployment). Deployments with
// no known price are still served; Unpriced lists them.
func NewPricebook(p *Prices, cfg *config.Config) *Pricebook {
	b := &Pricebook{prices: make(map[string]deploymentPrice, len(cfg.Deployments))}
	for _, d := range cfg.Deployments {
		price, known := ForDeployment(p, d)
		maxOut := d.Info.MaxOutputTokens
		if maxOut == 0 {
			maxOut = price.MaxOutputTokens
		}
		if maxOut == 0 {
			maxOut = DefaultMaxOutputTokens
		}
		dp := deploymentPrice{price: price, known: known, maxOut: maxOut}
		if price.OffPeak != nil {
			dp.offPeak = price.scaled(price.OffPeak.Permille, 1000)
		}
		b.prices[d.ID] = dp
	}
	return b
}

// Cost is what u costs on deployment id for a request that started at start, in
// micro-dollars (start matters for providers with off-peak rates); known is false when
// the deployment has no price or u no usage.
func (b *Pricebook) Cost(id string, u translate.Usage, start time.Time) (microUSD int64, known bool) {
	dp, ok := b.prices[id]
	if !ok || !dp.known {
		return 0, false
	}
	price := &dp.price
	if price.OffPeak != nil && !price.OffPeak.IsPeak(start) {
		price = &dp.offPeak
	}
	c := price.Cost(u)
	return c.Microdollars(), c.Known
}

// MaxOutputTokens is the longest response deployment id can give.
func (b *Pricebook) MaxOutputTokens(id string) int {
	if dp, ok := b.prices[id]; ok {
		return dp.maxOut
	}
	return DefaultMaxOutputTokens
}
