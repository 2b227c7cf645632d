package warmup

import (
	"errors"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func TestConfigDefaults(t *testing.T) {
	d := DefaultConfig()
	require.NoError(t, d.Validate())
	require.True(t, d.WarmOnJoin)
	require.True(t, d.WarmOnLeave)
	require.Equal(t, d, d.WithDefaults())

	z := Config{WarmOnJoin: true}.WithDefaults()
	require.Equal(t, DefaultMaxHotKeys, z.MaxHotKeys)
	require.Equal(t, DefaultMinHits, z.MinHits)
	require.Equal(t, DefaultConcurrency, z.Concurrency)
	require.Equal(t, DefaultTimeout, z.Timeout)
	require.Equal(t, DefaultDecayInterval, z.DecayInterval)
	require.Equal(t, DefaultSampleEvery, z.SampleEvery)
	require.True(t, z.WarmOnJoin)
	require.False(t, z.WarmOnLeave)
	require.NoError(t, Config{}.Validate(), "the zero config is valid")
	require.NoError(t, Config{MaxHotKeys: -1}.Validate(), "negative MaxHotKeys turns tracking off")
}

func TestConfigValidateReportsEveryField(t *testing.T) {
	err := Config{
		MaxHotKeys:    MaxMaxHotKeys + 1,
		MinHits:       -1,
		Concurrency:   -2,
		Timeout:       -time.Second,
		DecayInterval: -time.Second,
		SampleEvery:   MaxSampleEvery + 1,
	}.Validate()
	require.Error(t, err)
	require.True(t, errors.Is(err, ErrInvalidConfig))
	for _, field := range []string{"MaxHotKeys", "MinHits", "Concurrency", "Timeout", "DecayInterval", "SampleEvery"} {
		require.Contains(t, err.Error(), field)
	}
	require.Contains(t, err.Error(), "warmup:")
}
