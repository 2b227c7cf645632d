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
	require.Equal(t, defaultMaxHotKeys, z.MaxHotKeys)
	require.Equal(t, defaultMinHits, z.MinHits)
	require.Equal(t, defaultConcurrency, z.Concurrency)
	require.Equal(t, defaultTimeout, z.Timeout)
	require.Equal(t, defaultDecayInterval, z.DecayInterval)
	require.Equal(t, defaultSampleEvery, z.SampleEvery)
	require.True(t, z.WarmOnJoin)
	require.False(t, z.WarmOnLeave)
	require.NoError(t, Config{}.Validate(), "the zero config is valid")
	require.NoError(t, Config{MaxHotKeys: -1}.Validate(), "negative MaxHotKeys turns tracking off")
}

func TestConfigValidateReportsEveryField(t *testing.T) {
	err := Config{
		MaxHotKeys:    maxHotKeysLimit + 1,
		MinHits:       -1,
		Concurrency:   -2,
		Timeout:       -time.Second,
		DecayInterval: -time.Second,
		SampleEvery:   maxSampleEvery + 1,
	}.Validate()
	require.Error(t, err)
	require.True(t, errors.Is(err, ErrInvalidConfig))
	for _, field := range []string{"MaxHotKeys", "MinHits", "Concurrency", "Timeout", "DecayInterval", "SampleEvery"} {
		require.Contains(t, err.Error(), field)
	}
	require.Contains(t, err.Error(), "warmup:")
}
