package spend

import (
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
	price  Price
	known  bool
	maxOut int
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
		b.prices[d.ID] = deploymentPrice{price: price, known: known, maxOut: maxOut}
	}
	return b
}

// Cost is what u costs on deployment id, in micro-dollars; known is false when the
// deployment has no price or u no usage.
func (b *Pricebook) Cost(id string, u translate.Usage) (microUSD int64, known bool) {
	dp, ok := b.prices[id]
	if !ok || !dp.known {
		return 0, false
	}
	c := dp.price.Cost(u)
	return c.Microdollars(), c.Known
}

// MaxOutputTokens is the longest response deployment id can give.
func (b *Pricebook) MaxOutputTokens(id string) int {
	if dp, ok := b.prices[id]; ok {
		return dp.maxOut
	}
	return DefaultMaxOutputTokens
}
